// The coordinators' dashboard end to end, in headless Chromium (Debian's
// /usr/bin/chromium driven by playwright-core): the real relay binary, the
// real `muster` CLI as a desk device, and a coordinator in the browser who
// logs in, finds a contact, merges a duplicate, watches a check-in made at
// the desk appear on the roster without reloading, and downloads a CSV.
//
// Run: scripts/test-dashboard (builds the binaries, then `node --test
// dashboard/e2e/`). Needs scripts/install-browser-tools first.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { root, sleep, run, scene } from './harness.mjs';

const SCREENSHOT = path.join(root, 'target', 'dashboard-e2e.png');

test('a coordinator logs in, finds a contact, merges a duplicate, sees a check-in live and downloads a CSV', { timeout: 120_000 }, async (t) => {
  const { tmp, data, base, launch } = await scene(t, 'dashboard');

  // Tokens, as an administrator creates them (the secret on stdout).
  const deskToken = run('muster-server', ['token', 'create', '--role', 'coordinator', '--name', 'front desk', '--data', data]);
  const browserToken = run('muster-server', ['token', 'create', '--role', 'coordinator', '--name', 'coordinator', '--data', data]);
  const observerToken = run('muster-server', ['token', 'create', '--role', 'observer', '--data', data]);
  assert.match(deskToken, /^mst_[0-9a-f]{64}$/);

  // The desk: an event, contacts with a duplicate pair, sign-ups; synced.
  const store = path.join(tmp, 'desk.muster');
  const muster = (...args) => run('muster', ['--store', store, ...args]);
  muster('login', base, deskToken);
  const gala = muster('event', 'add', '--title', 'Spring Gala', '--starts', '2030-04-18T18:00:00Z', '--place', 'Town Hall', '--capacity', '50');
  const maria = muster('contact', 'add', '--name', 'Maria Gonzalez', '--phone', '+44 7700 900123', '--email', 'maria@example.org');
  const maria2 = muster('contact', 'add', '--name', 'María González', '--phone', '07700 900123');
  const tom = muster('contact', 'add', '--name', 'Tom Okafor', '--phone', '+44 7700 900456');
  const ada = muster('contact', 'add', '--name', 'Ada Lovelace', '--email', 'ada@example.org');
  for (const c of [maria, tom, ada]) muster('signup', gala, c);
  muster('sync');
  for (const id of [maria, maria2, tom, ada]) assert.match(id, /^c_[0-9a-f]{32}$/);

  const browser = await launch({ acceptDownloads: true, viewport: { width: 1180, height: 860 } });
  const page = browser.pages()[0] ?? await browser.newPage();
  page.setDefaultTimeout(15_000);
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(String(e)));

  // --- Log in: an observer token is refused, a coordinator token accepted.
  await page.goto(base + '/');
  await page.fill('#token', observerToken);
  await page.click('button[type=submit]');
  await page.locator('.error').waitFor();
  assert.match(await page.locator('.error').innerText(), /observer token/);
  await page.fill('#token', browserToken);
  await page.click('button[type=submit]');
  await page.locator('h1', { hasText: 'Events' }).waitFor();
  assert.equal(new URL(page.url()).pathname, '/');
  // The refused login above was a 403 the console reports; from here on,
  // nothing may fail.
  problems.length = 0;
  const row = page.locator(`tr[data-event="${gala}"]`);
  await row.waitFor();
  assert.match(await row.innerText(), /Spring Gala/);

  // --- Find a contact and open it.
  await page.click('nav >> text=Contacts');
  await page.fill('#q', 'gonz');
  await page.press('#q', 'Enter');
  await page.locator('#result-count').waitFor();
  assert.match(await page.locator('#result-count').innerText(), /2 results/);
  await page.getByRole('link', { name: 'Maria Gonzalez', exact: true }).click();
  await page.locator('h1', { hasText: 'Maria Gonzalez' }).waitFor();
  const detail = await page.locator('main').innerText();
  assert.match(detail, /maria@example\.org/);
  assert.match(detail, /Spring Gala/);
  assert.match(detail, /front desk/, 'created by the desk, named by its token label');
  assert.match(detail, /Change history/);

  // --- Merge the duplicate from the review queue; it leaves the queue.
  await page.click('nav >> text=Duplicates');
  const pairSelector = `li.pair[data-a="${maria}"][data-b="${maria2}"], li.pair[data-a="${maria2}"][data-b="${maria}"]`;
  for (let i = 0; (await page.locator(pairSelector).count()) === 0; i++) {
    assert.ok(i < 40, 'the duplicate pair never reached the queue');
    await page.waitForTimeout(250);
    await page.reload();
  }
  const pair = page.locator(pairSelector);
  assert.match(await pair.innerText(), /same phone \+447700900123/);
  const keepLabel = (await pair.getAttribute('data-a')) === maria ? 'Merge (keep A)' : 'Merge (keep B)';
  await pair.getByRole('button', { name: keepLabel }).click();
  await page.locator('.notice', { hasText: 'Merged' }).waitFor();
  assert.match(await page.locator('.notice').first().innerText(), /Merged María González into Maria Gonzalez/);
  assert.equal(await page.locator(pairSelector).count(), 0, 'the merged pair left the queue');
  assert.equal(await page.locator(`table.merged tr[data-id="${maria2}"]`).count(), 1, 'listed as merged, with Unmerge');
  // The desk hears of the merge through the relay.
  let merged = false;
  for (let i = 0; i < 40 && !merged; i++) {
    muster('sync');
    merged = JSON.parse(muster('contact', 'show', maria2, '--json')).merged_into === maria;
    if (!merged) await sleep(250);
  }
  assert.ok(merged, 'the merge reached the desk');

  // --- The roster: a check-in made at the desk appears without a reload.
  await page.click('nav >> text=Events');
  await page.click(`a[href="/events/${gala}"]`);
  await page.locator('h1', { hasText: 'Spring Gala' }).waitFor();
  const checkedIn = page.locator('[data-count="checked_in"] .n');
  assert.equal(await checkedIn.innerText(), '0');
  await page.evaluate(() => { window.__sameDocument = 'not reloaded'; });
  const navigations = [];
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations.push(f.url()); });
  muster('checkin', gala, maria);
  muster('sync');
  await page.locator(`tr[data-contact="${maria}"][data-status="checked_in"]`).waitFor({ timeout: 10_000 });
  await page.waitForFunction(() => document.querySelector('[data-count="checked_in"] .n')?.textContent === '1');
  assert.equal(await checkedIn.innerText(), '1');
  assert.equal(await page.evaluate(() => window.__sameDocument), 'not reloaded');
  assert.deepEqual(navigations, [], 'no navigation happened');
  assert.match(await page.locator(`tr[data-contact="${maria}"]`).innerText(), /checked in/);
  await page.screenshot({ path: SCREENSHOT, fullPage: true });

  // --- Download a CSV.
  await page.click('nav >> text=Exports');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.click('a[href="/export/signups.csv"]'),
  ]);
  assert.match(download.suggestedFilename(), /^muster-signups-\d{4}-\d{2}-\d{2}\.csv$/);
  const csv = readFileSync(await download.path(), 'utf8');
  const lines = csv.trim().split(/\r?\n/);
  assert.equal(lines[0], 'event_id,event_title,event_starts_at,contact_id,contact_name,status,registered_at,checked_in_at,walk_in,waitlist_position');
  assert.equal(lines.length, 4, 'a header and three sign-ups');
  assert.ok(lines.some((l) => l.includes(maria) && l.includes(',checked_in,')), csv);

  // --- Readable on a phone: nothing wider than a 375 px screen.
  await page.setViewportSize({ width: 375, height: 740 });
  for (const p of ['/', `/events/${gala}`, '/duplicates', `/contacts/${maria}`, '/contacts?q=gonz', '/feedback', '/export']) {
    await page.goto(base + p);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 375, `${p} is ${width} px wide at 375 px`);
  }

  // --- Log out: the pages need a session again.
  await page.click('header button[type=submit]');
  await page.locator('#token').waitFor();
  await page.goto(base + '/contacts');
  assert.equal(new URL(page.url()).pathname, '/', 'sent back to the login form');

  assert.deepEqual(problems, [], 'no script errors and no Content-Security-Policy violations');
});
