// Test harness for the browser suite: starts the real server binary on a free port with a
// fresh data directory (and can kill and restart it on the same port), launches Debian's
// Chromium through playwright-core, and drives the client the way a person would.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..');
export const screenshotDir = path.join(repoRoot, 'docs', 'screenshots');
const BIN = process.env.WEBIM_BIN ? path.resolve(process.env.WEBIM_BIN) : path.join(repoRoot, 'target', 'debug', 'webim');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A running server; `restart()` brings it back on the same port and data directory. */
export class Server {
  constructor() {
    this.dataDir = mkdtempSync(path.join(tmpdir(), 'webim-browser-'));
    this.port = 0;
    this.proc = null;
    this.log = [];
  }

  async start() {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.spawnOnce();
        return this;
      } catch (e) {
        // Right after a kill the port can take a moment to be free again.
        if (this.port === 0 || attempt >= 20) throw e;
        await sleep(250);
      }
    }
  }

  spawnOnce() {
    const listen = `127.0.0.1:${this.port}`;
    const proc = spawn(BIN, ['serve', '--listen', listen, '--data-dir', this.dataDir, '--argon2-memory-kib', '64'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1', WEBIM_LOG: process.env.WEBIM_LOG || 'webim=info' },
    });
    this.proc = proc;
    return new Promise((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => fail(new Error(`server did not start in 15 s:\n${buf}`)), 15000);
      const fail = (e) => {
        clearTimeout(timer);
        proc.kill('SIGKILL');
        reject(e);
      };
      const onData = (chunk) => {
        const text = chunk.toString();
        this.log.push(text);
        if (this.log.length > 400) this.log.splice(0, 200);
        buf += text;
        // eslint-disable-next-line no-control-regex
        const m = buf.replace(/\x1b\[[0-9;]*m/g, '').match(/listening on (http:\/\/[0-9.]+:(\d+))/);
        if (m) {
          clearTimeout(timer);
          this.url = m[1];
          this.port = Number(m[2]);
          resolve();
        }
      };
      proc.stderr.on('data', onData);
      proc.stdout.on('data', onData);
      proc.on('error', fail);
      proc.on('exit', (code, sig) => {
        if (!this.url || this.proc !== proc) return;
        this.exited = { code, sig };
      });
      proc.on('exit', (code) => {
        if (!buf.includes('listening on')) fail(new Error(`server exited with ${code} before listening:\n${buf}`));
      });
    });
  }

  /** Stops the process: SIGKILL by default (a crash), or SIGTERM (a clean stop). */
  async stop(signal = 'SIGKILL') {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise((r) => proc.once('exit', r));
    proc.kill(signal);
    await Promise.race([gone, sleep(10000)]);
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await gone;
    }
  }

  async restart(signal = 'SIGKILL') {
    await this.stop(signal);
    this.url = null;
    await this.start();
  }

  async close() {
    await this.stop('SIGTERM');
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

export async function startServer() {
  return new Server().start();
}

export async function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, args: ARGS });
}

let userSeq = 0;
/** A unique lower-case username (3–32 of a-z0-9_). */
export function uniqueName(prefix) {
  userSeq += 1;
  return `${prefix}_${Date.now().toString(36).slice(-5)}${userSeq}`.slice(0, 32);
}

export const PASSWORD = 'correct horse battery';

/** Polls `fn` until it returns a truthy value; fails with `what` after `timeout` ms. */
export async function until(fn, { timeout = 5000, interval = 50, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await sleep(interval);
  }
}

/**
 * A person: a browser context (its own cookie jar and storage, like another browser) with
 * one page. Collects page errors so tests can assert there were none.
 */
export async function person(browser, server, { viewport = { width: 1280, height: 800 } } = {}) {
  const context = await browser.newContext({ viewport, baseURL: server.url, locale: 'en-GB', timezoneId: 'UTC' });
  context.setDefaultTimeout(10000);
  const page = await context.newPage();
  const p = { context, page, errors: [] };
  watch(p, page);
  await page.goto('/');
  return p;
}

export function watch(p, page) {
  page.on('pageerror', (e) => p.errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) p.errors.push(m.text());
  });
}

/** Opens another tab of the same person (same cookies and storage). */
export async function newTab(p) {
  const page = await p.context.newPage();
  watch(p, page);
  await page.goto('/');
  return page;
}

export async function signUp(p, username, displayName) {
  const { page } = p;
  await page.waitForSelector('[data-testid=auth-screen]');
  await page.click('[data-testid=auth-tab-signup]');
  await page.fill('[data-testid=auth-username]', username);
  await page.fill('[data-testid=auth-password]', PASSWORD);
  if (displayName) await page.fill('[data-testid=auth-display-name]', displayName);
  await page.click('[data-testid=auth-submit]');
  await page.waitForSelector('[data-testid=app]');
  Object.assign(p, { username, displayName: displayName || username });
  return p;
}

export async function signIn(p, username, password = PASSWORD) {
  const { page } = p;
  await page.waitForSelector('[data-testid=auth-screen]');
  await page.fill('[data-testid=auth-username]', username);
  await page.fill('[data-testid=auth-password]', password);
  await page.click('[data-testid=auth-submit]');
  await page.waitForSelector('[data-testid=app]');
}

/** `a` finds `b` with the search box and asks; `b` accepts from the inbox. */
export async function befriend(a, b) {
  await a.page.fill('[data-testid=search-input]', b.username);
  const row = a.page.locator(`[data-testid=user-result][data-username="${b.username}"]`);
  await row.locator('[data-testid=add-friend]').click();
  await row.locator('[data-testid=requested]').waitFor();
  await a.page.fill('[data-testid=search-input]', '');
  await b.page.locator('[data-testid=inbox-badge]:not([hidden])').waitFor();
  await b.page.click('[data-testid=open-inbox]');
  await b.page.locator(`[data-testid=friend-request][data-username="${a.username}"] [data-testid=accept-friend]`).click();
  await b.page.locator('[data-testid=friend-request]').waitFor({ state: 'detached' });
  await b.page.click('[data-testid=dialog-close]');
  await a.page.locator(`[data-testid=conv-item][data-title="${b.displayName}"]`).waitFor();
  await b.page.locator(`[data-testid=conv-item][data-title="${a.displayName}"]`).waitFor();
}

export function convItem(page, title) {
  return page.locator(`[data-testid=conv-item][data-title="${title}"]`);
}

export async function openChat(page, title) {
  await convItem(page, title).click();
  await page.locator(`[data-testid=chat-title]`).filter({ hasText: title }).waitFor();
  await page.locator('[data-testid=messages]').waitFor();
}

/** Types into the composer and presses Enter. */
export async function send(page, text) {
  const box = page.locator('[data-testid=composer]');
  await box.fill(text);
  await box.press('Enter');
}

/** Bodies of the confirmed messages on screen, in order. */
export async function bodies(page, { pending = false } = {}) {
  return page.$$eval(`[data-testid=message]${pending ? '' : '[data-status=confirmed]'} [data-testid=message-body]`, (els) => els.map((e) => e.textContent));
}

export async function markOf(page, text) {
  return page.evaluate((t) => {
    const msg = [...document.querySelectorAll('[data-testid=message]')].find((m) => m.querySelector('[data-testid=message-body]').textContent === t);
    const mark = msg && msg.querySelector('[data-testid=mark]');
    return mark ? mark.dataset.mark : null;
  }, text);
}

export async function shot(page, name) {
  mkdirSync(screenshotDir, { recursive: true });
  await page.screenshot({ path: path.join(screenshotDir, name) });
}

/** A small PNG (a colour gradient with a dot), made without any image library. */
export async function makePng(size = 96) {
  const { deflateSync } = await import('node:zlib');
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const raw = Buffer.alloc((size * 3 + 1) * size);
  for (let y = 0; y < size; y++) {
    raw[y * (size * 3 + 1)] = 0;
    for (let x = 0; x < size; x++) {
      const o = y * (size * 3 + 1) + 1 + x * 3;
      const d = Math.hypot(x - size / 2, y - size / 2) < size / 5;
      raw[o] = d ? 255 : Math.round((x / size) * 255);
      raw[o + 1] = d ? 220 : 80;
      raw[o + 2] = d ? 40 : Math.round((y / size) * 255);
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

/** Direct API calls, for setting the scene faster than through the UI. */
export async function apiUser(server, username, displayName) {
  const call = async (method, path, body, token) => {
    const res = await fetch(`${server.url}/api/v1${path}`, {
      method,
      headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(body instanceof Buffer ? { 'Content-Type': 'image/png' } : body ? { 'Content-Type': 'application/json' } : {}) },
      body: body instanceof Buffer ? body : body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  await call('POST', '/auth/register', { username, password: PASSWORD, display_name: displayName });
  const { token, user } = await call('POST', '/auth/login', { username, password: PASSWORD });
  const u = { username, displayName, token, user, id: user.id };
  u.call = (method, path, body) => call(method, path, body, token);
  u.befriend = async (other) => {
    const { request } = await u.call('POST', '/friend-requests', { user_id: other.id });
    await other.call('POST', `/friend-requests/${request.id}/accept`);
  };
  let n = 0;
  u.say = (to, body) => u.call('POST', '/messages', { to, client_msg_id: `${username}-${Date.now()}-${++n}`, body });
  return u;
}
