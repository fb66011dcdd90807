// What the browser tests share: the workspace's binaries, the relay
// started on port 0, the CLI run as a desk, Chromium's path.

import { spawn, execFileSync } from 'node:child_process';
import path from 'node:path';
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
