// An event's public registration page end to end, in headless Chromium on
// a phone-sized screen: the real relay binary, the real `muster` CLI as
// the coordinator's desk that publishes the event, and people registering
// themselves in the browser.
//
// Run: scripts/test-dashboard (builds the binaries, then `node --test
// dashboard/e2e/`). Needs scripts/install-browser-tools first.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { root, sleep, run, scene } from './harness.mjs';

const SCREENSHOT = path.join(root, 'target', 'registration-e2e.png');

test('people register on a phone, twice is once, the last seat then the waitlist, and a private link cancels', { timeout: 120_000 }, async (t) => {
  const { tmp, data, base, launch } = await scene(t, 'registration');

  // The coordinator's desk publishes an event of two seats.
  const token = run('muster-server', ['token', 'create', '--role', 'coordinator', '--name', 'office', '--data', data]);
  const store = path.join(tmp, 'desk.muster');
  const muster = (...args) => run('muster', ['--store', store, ...args]);
  muster('login', base, token);
  const drive = muster('event', 'add', '--title', 'Food drive', '--starts', '2030-04-18T10:00:00Z', '--place', 'Community hall', '--capacity', '2');
  const published = muster('event', 'publish', drive);
  const url = published.split('\n')[0];
  assert.match(url, new RegExp(`^${base}/r/[0-9a-f]{32}$`), published);
  muster('sync');
  for (let i = 0; ; i++) {
    const r = await fetch(url);
    if (r.status === 200) break;
    assert.ok(i < 60, `the page never opened (${r.status})`);
    await sleep(250);
  }

  const browser = await launch({ viewport: { width: 375, height: 740 } });
  const page = browser.pages()[0] ?? await browser.newPage();
  page.setDefaultTimeout(15_000);
  const problems = [];
  // The 422 of a form with a mistake and the 410 of a closed page are
  // answers the test asks for; any other console error is a problem.
  const expected = /Failed to load resource: the server responded with a status of (422|410) /;
  page.on('console', (m) => { if (m.type() === 'error' && !expected.test(m.text())) problems.push(m.text()); });

  /** Opens the page and registers `name` with `email`; returns the answer's text. */
  async function register(name, email, { consent = [] } = {}) {
    await page.goto(url);
    await page.fill('#f-name', name);
    await page.fill('#f-email', email);
    for (const c of consent) await page.check(`input[name=consent][value=${c}]`);
    await page.click('button[type=submit]');
    await page.locator('.done, .summary').first().waitFor();
    return page.locator('main').innerText();
  }

  // --- The page on a phone: the event, labelled fields in order, nothing
  // wider than the screen, consent unticked.
  await page.goto(url);
  assert.match(await page.locator('h1').innerText(), /Food drive/);
  assert.match(await page.locator('main').innerText(), /Community hall/);
  assert.match(await page.locator('main').innerText(), /2 seats left/);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 375, `the page is ${width} px wide at 375 px`);
  assert.equal(await page.locator('script').count(), 0, 'the page needs no JavaScript');
  assert.equal(await page.getByLabel('Your name').count(), 1);
  assert.equal(await page.getByLabel('Email address').count(), 1);
  assert.equal(await page.locator('input[name=consent]:checked').count(), 0, 'consent starts unticked');
  await page.focus('#f-name');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'f-email', 'the keyboard goes from name to email');

  // --- A mistake is named next to its field, and what was typed stays.
  await page.fill('#f-name', 'Ana Silva');
  await page.fill('#f-email', 'ana-at-example.org');
  await page.click('button[type=submit]');
  await page.locator('#f-email-problem').waitFor();
  assert.match(await page.locator('#f-email-problem').innerText(), /no @/);
  assert.equal(await page.inputValue('#f-name'), 'Ana Silva');
  assert.equal(await page.getAttribute('#f-email', 'aria-describedby'), 'f-email-problem');

  // --- Ana registers; her confirmation carries her private cancel link.
  await page.fill('#f-email', 'ana@example.org');
  await page.check('input[name=consent][value=email]');
  await page.click('button[type=submit]');
  await page.locator('.done').waitFor();
  assert.match(await page.locator('h1').innerText(), /You are registered/);
  const cancelLink = await page.getByRole('link', { name: 'Cancel my registration' }).getAttribute('href');
  assert.match(cancelLink, /^\/r\/[0-9a-f]{32}\/cancel\/c_[0-9a-f]{32}\/[0-9a-f]{32}$/);

  // --- The same email again: one contact, one sign-up, and no link.
  const again = await register('Ana S.', 'ANA@example.org');
  assert.match(again, /You are registered/);
  assert.doesNotMatch(again, /Ana Silva/, 'nothing known about her is shown');
  assert.equal(await page.getByRole('link', { name: 'Cancel my registration' }).count(), 0);

  // --- Bo takes the last seat; Cy waits.
  assert.match(await register('Bo Chen', 'bo@example.org'), /You are registered/);
  await page.goto(url);
  assert.match(await page.locator('main').innerText(), /Fully booked/);
  assert.match(await register('Cy Diaz', 'cy@example.org'), /on the waitlist, place 1/);
  await page.screenshot({ path: SCREENSHOT, fullPage: true });

  // The desk's next sync brings them: three contacts, three sign-ups.
  const roster = () => {
    muster('sync');
    return JSON.parse(muster('roster', drive, '--json'));
  };
  let lines = [];
  for (let i = 0; i < 40; i++) {
    lines = roster();
    if (lines.length === 3) break;
    await sleep(250);
  }
  assert.equal(lines.length, 3, JSON.stringify(lines));
  const contacts = JSON.parse(muster('contact', 'list', '--json'));
  assert.equal(contacts.filter((c) => c.email === 'ana@example.org').length, 1, JSON.stringify(contacts));
  assert.deepEqual(lines.map((l) => l.status), ['registered', 'registered', 'waitlisted']);

  // --- Ana cancels with her link: opening it changes nothing, the button
  // cancels, and Cy takes the seat.
  await page.goto(base + cancelLink);
  assert.match(await page.locator('h1').innerText(), /Cancel your registration/);
  await page.click('button[type=submit]');
  await page.locator('main', { hasText: 'is cancelled' }).waitFor();
  let moved = false;
  for (let i = 0; i < 40 && !moved; i++) {
    const now = roster();
    moved = now.some((l) => l.name === 'Cy Diaz' && l.status === 'registered')
      && now.some((l) => l.name === 'Ana Silva' && l.status === 'cancelled');
    if (!moved) await sleep(250);
  }
  assert.ok(moved, 'the first on the waitlist took the freed seat');

  // --- Unpublished, the page says so.
  muster('event', 'unpublish', drive);
  muster('sync');
  for (let i = 0; ; i++) {
    const r = await fetch(url);
    if (r.status === 410) break;
    assert.ok(i < 60, `the page never closed (${r.status})`);
    await sleep(250);
  }
  await page.goto(url);
  assert.match(await page.locator('main').innerText(), /does not take registrations online/);

  assert.deepEqual(problems, [], 'no console errors and no Content-Security-Policy violations');
});
