// What the browser tests share: the workspace's binaries, the relay
// started on port 0, the CLI run as a desk, Chromium's path.

import { spawn, execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const bin = (name) => path.join(root, 'target', 'debug', name);
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Like sleep, but does not keep node running once everything else is done. */
export const deadline = (ms) => new Promise((r) => setTimeout(r, ms).unref());

/** Starts `muster-server serve` on port 0; resolves with its address. */
export function startRelay(data) {
  const child = spawn(bin('muster-server'), ['serve', '--listen', '127.0.0.1:0', '--data', data], {
    env: { ...process.env, RUST_LOG: 'info', NO_COLOR: '1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const log = [];
  const addr = new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => reject(new Error(`the relay did not start:\n${log.join('')}`)), 20_000);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      log.push(chunk);
      buffered += chunk;
      const m = buffered.match(/listening on http:\/\/(\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the relay exited (${code}) before listening:\n${log.join('')}`));
    });
  });
  return { child, addr, log };
}

/** Runs a binary of the workspace; returns its stdout, trimmed. */
export function run(name, args) {
  try {
    return execFileSync(bin(name), args, {
      encoding: 'utf8',
      env: { ...process.env, RUST_LOG: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 30_000,
    }).trim();
  } catch (e) {
    throw new Error(`${name} ${args.join(' ')} failed: ${e.stderr || e.message}`);
  }
}

/**
 * What a browser test runs in: the binaries checked, a temporary directory,
 * a relay started on its data there, and one `t.after` hook that closes
 * the browser (its profile is in the directory), stops the relay, then
 * removes the files. `launch(options)` starts headless Chromium with
 * playwright `options` (a viewport, downloads).
 */
export async function scene(t, name) {
  for (const b of ['muster-server', 'muster']) {
    assert.ok(existsSync(bin(b)), `${bin(b)} is missing: run scripts/test-dashboard (it builds it)`);
  }
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/install-browser-tools`);
  const tmp = mkdtempSync(path.join(tmpdir(), `muster-${name}-e2e-`));
  const data = path.join(tmp, 'relay-data');
  const relay = startRelay(data);
  let browser = null;
  t.after(async () => {
    if (browser) await Promise.race([browser.close(), deadline(10_000)]);
    const exited = new Promise((r) => relay.child.once('exit', r));
    if (relay.child.exitCode === null && relay.child.kill('SIGTERM')) {
      await Promise.race([exited, deadline(10_000)]);
    }
    rmSync(tmp, { recursive: true, force: true });
  });
  const base = `http://${await relay.addr}`;
  const launch = async (options) => {
    const profile = path.join(tmp, 'chromium-profile');
    mkdirSync(profile);
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      ...options,
    });
    return browser;
  };
  return { tmp, data, base, launch };
}
