// What the network can do to a client, staged by intercepting its requests: a poll answer
// that loses a message (the seq gap is filled from history), a 410 (resync), answers that
// repeat events (nothing shows twice), a send whose answer is lost (retry, stored once),
// and a long history paged in as you scroll up.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, person, signIn, apiUser, openChat, bodies, until, uniqueName, convItem, send } from './harness.js';

let server;
let browser;
let ann;
let bob;
let page;
let cid;
const intercept = { mode: null, seen: [] };

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  ann = await apiUser(server, uniqueName('ann'), 'Ann');
  bob = await apiUser(server, uniqueName('bob'), 'Bob');
  await ann.befriend(bob);
  const p = await person(browser, server);
  await signIn(p, bob.username);
  page = p.page;
  bob.p = p;
  await page.route('**/api/v1/events?*', async (route) => {
    // Polls are held until something happens, so what to do with an answer is decided when
    // it comes back, not when it was asked for.
    let response;
    let json;
    try {
      response = await route.fetch({ timeout: 0 });
      json = await response.json();
    } catch {
      return route.abort().catch(() => {});
    }
    if (intercept.mode === 'hold') await intercept.release;
    const mode = intercept.mode;
    // Only answers that carry a message are tampered with (reads and receipts pass as they are).
    const carriesMessage = json.events && json.events.some((e) => e.type === 'message.new');
    if (!mode || !carriesMessage) return route.fulfill({ response, json }).catch(() => {});
    intercept.seen.push(json.events.map((e) => e.type));
    if (mode === 'drop') {
      json.events = json.events.filter((e) => !(e.type === 'message.new' && e.message.body === intercept.body));
      intercept.mode = null;
      return route.fulfill({ response, json }).catch(() => {});
    }
    if (mode === 'expire') {
      intercept.mode = null;
      return route.fulfill({ status: 410, contentType: 'application/json', body: JSON.stringify({ error: { code: 'cursor_expired', message: 'the cursor is too old; reload' } }) });
    }
    if (mode === 'dup') {
      intercept.mode = null;
      json.events = [...json.events, ...json.events];
      intercept.replay = json.events;
      return route.fulfill({ response, json });
    }
    if (mode === 'replay') {
      intercept.mode = null;
      json.events = [...intercept.replay, ...json.events];
      return route.fulfill({ response, json });
    }
    return route.fulfill({ response, json });
  });
  await convItem(page, 'Ann').waitFor();
  cid = await convItem(page, 'Ann').getAttribute('data-cid');
});

after(async () => {
  await browser?.close();
  await server?.close();
});

const to = () => ({ user: bob.id });

test('a message lost from a poll answer is filled from history by its seq gap', async () => {
  await openChat(page, 'Ann');
  await ann.say(to(), 'one');
  await until(async () => (await bodies(page)).join('|') === 'one', { timeout: 2000, what: 'the first message' });
  const fills = [];
  page.on('request', (r) => { if (r.url().includes('after_seq=')) fills.push(r.url()); });
  intercept.body = 'two (lost)';
  intercept.mode = 'drop';
  await ann.say(to(), 'two (lost)');
  await until(() => intercept.mode === null, { what: 'the answer to be tampered with' });
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(await bodies(page), ['one'], 'the lost message is not there yet');
  await ann.say(to(), 'three');
  await until(async () => (await bodies(page)).join('|') === 'one|two (lost)|three', { timeout: 2000, what: 'the gap to be filled' });
  assert.ok(fills.some((u) => u.includes('after_seq=1')), `history was asked after seq 1: ${fills}`);
});

test('a 410 makes the client resync and carry on without losing a message', async () => {
  const lists = [];
  page.on('request', (r) => { if (r.url().endsWith('/api/v1/conversations')) lists.push(r.url()); });
  intercept.mode = 'expire';
  await ann.say(to(), 'four (answered with 410)');
  await until(async () => (await bodies(page)).includes('four (answered with 410)'), { timeout: 3000, what: 'the message to come back through the resync' });
  assert.ok(lists.length >= 1, 'the conversation list was reloaded');
  await ann.say(to(), 'five');
  await until(async () => (await bodies(page)).slice(-2).join('|') === 'four (answered with 410)|five', { timeout: 2000, what: 'live messages after the resync' });
  assert.equal(await page.locator('[data-testid=auth-screen]').count(), 0);
  assert.equal(await page.locator('[data-testid=conn-banner]').isHidden(), true);
});

test('events that arrive twice show once and count once', async () => {
  // Away from the chat, so the message stays unread.
  await page.reload();
  await convItem(page, 'Ann').waitFor();
  intercept.mode = 'dup';
  await ann.say(to(), 'six (sent twice)');
  await until(async () => (await convItem(page, 'Ann').locator('[data-testid=unread-badge]').textContent().catch(() => null)) === '1', { timeout: 2000, what: 'one unread' });
  intercept.mode = 'replay';
  await ann.say(to(), 'seven');
  await until(async () => (await convItem(page, 'Ann').locator('[data-testid=unread-badge]').textContent().catch(() => null)) === '2', { timeout: 2000, what: 'two unread' });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(await convItem(page, 'Ann').locator('[data-testid=unread-badge]').textContent(), '2');
  assert.equal(await page.title(), '(2) webim');
  await openChat(page, 'Ann');
  await until(async () => (await bodies(page)).slice(-3).join('|') === 'five|six (sent twice)|seven', { what: 'each message once' });
  const seqs = await page.$$eval('[data-testid=message][data-status=confirmed]', (els) => els.map((e) => Number(e.dataset.seq)));
  assert.deepEqual(seqs, [1, 2, 3, 4, 5, 6, 7]);
});

test('a send whose answer is lost is retried with the same client_msg_id and stored once', async () => {
  // Hold the poll so the message's own event cannot settle it first, then lose the answer.
  let release;
  intercept.release = new Promise((r) => { release = r; });
  intercept.mode = 'hold';
  await page.route('**/api/v1/messages', async (route) => {
    await route.fetch();
    await route.abort('connectionreset');
  }, { times: 1 });
  const posts = [];
  page.on('request', (r) => { if (r.url().endsWith('/api/v1/messages') && r.method() === 'POST') posts.push(r.postDataJSON()); });
  try {
    await send(page, 'eight (answer lost)');
    const failed = page.locator('[data-testid=message][data-status=failed]');
    await failed.waitFor({ timeout: 5000 });
    await failed.locator('[data-testid=retry]').click();
    await page.locator('[data-testid=message][data-status=failed], [data-testid=message][data-status=sending]').waitFor({ state: 'detached', timeout: 5000 });
  } finally {
    intercept.mode = null;
    release();
  }
  assert.equal(posts.length, 2);
  assert.equal(posts[0].client_msg_id, posts[1].client_msg_id);
  const { messages } = await ann.call('GET', `/conversations/${cid}/messages?limit=10`);
  assert.equal(messages.filter((m) => m.body === 'eight (answer lost)').length, 1, 'stored once');
  assert.equal(messages[messages.length - 1].body, 'eight (answer lost)');
  await new Promise((r) => setTimeout(r, 500));
  assert.equal((await bodies(page)).filter((b) => b === 'eight (answer lost)').length, 1);
});

test('a long history loads older pages as you scroll up', async () => {
  const carl = await apiUser(server, uniqueName('carl'), 'Carl');
  await carl.befriend(bob);
  for (let i = 1; i <= 130; i++) await carl.say({ user: bob.id }, `history ${i}`);
  await convItem(page, 'Carl').waitFor({ timeout: 3000 });
  // A fresh page knows only the newest page of history (live ones were kept in memory).
  await page.reload();
  await openChat(page, 'Carl');
  await until(async () => (await bodies(page)).length === 50, { what: 'the newest page' });
  assert.equal((await bodies(page))[49], 'history 130');
  for (const n of [100, 130]) {
    await page.$eval('[data-testid=messages]', (s) => { s.scrollTop = 0; });
    await until(async () => (await bodies(page)).length === n, { timeout: 3000, what: `${n} messages after scrolling up` });
  }
  const seqs = await page.$$eval('[data-testid=message][data-status=confirmed]', (els) => els.map((e) => Number(e.dataset.seq)));
  assert.deepEqual(seqs, Array.from({ length: 130 }, (_, i) => i + 1));
  await page.locator('.older-status', { hasText: 'beginning of the conversation' }).waitFor();
  // The view kept its place: the first page's oldest message is still in sight, not jumped past.
  const top = await page.$eval('[data-testid=messages]', (s) => s.scrollTop);
  assert.ok(top > 0, 'scroll position was kept while older pages were added above');
  assert.deepEqual(bob.p.errors, []);
});
