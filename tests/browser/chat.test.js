// Two people chatting in two browsers: live delivery both ways with receipt marks, emoji
// from the picker, markup that must stay text, and messages that arrive while the
// receiver's page is closed.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, person, newTab, signUp, befriend, openChat, send, bodies, markOf, convItem, until, uniqueName } from './harness.js';

let server;
let browser;
let ann;
let ben;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  ann = await signUp(await person(browser, server), uniqueName('ann'), 'Ann Archer');
  ben = await signUp(await person(browser, server), uniqueName('ben'), 'Ben Baker');
  await befriend(ann, ben);
});

after(async () => {
  await browser?.close();
  await server?.close();
});

const ORDER = ['sending', 'sent', 'delivered', 'read'];

test('two people chat both ways live, in order, with sent → delivered → read marks', async () => {
  const a = ann.page;
  const b = ben.page;
  await openChat(a, 'Ben Baker');
  // Record every mark the first message shows, in order, from the moment it is typed.
  await a.evaluate(() => {
    window.__marks = [];
    new MutationObserver(() => {
      const msg = [...document.querySelectorAll('[data-testid=message]')].find((m) => m.querySelector('[data-testid=message-body]').textContent === 'Hello Ben!');
      const mark = msg && msg.querySelector('[data-testid=mark]');
      const v = mark && mark.dataset.mark;
      if (v && window.__marks[window.__marks.length - 1] !== v) window.__marks.push(v);
    }).observe(document.body, { subtree: true, childList: true, attributes: true });
  });

  // Ben has not opened the chat: the message is delivered to his browser but not read.
  let t0 = Date.now();
  await send(a, 'Hello Ben!');
  await until(async () => (await convItem(b, 'Ann Archer').locator('[data-testid=unread-badge]').textContent().catch(() => null)) === '1', { timeout: 2000, what: 'Ben to see one unread message' });
  assert.ok(Date.now() - t0 < 2000);
  assert.match(await convItem(b, 'Ann Archer').locator('[data-testid=conv-preview]').textContent(), /Hello Ben!/);
  await until(async () => (await markOf(a, 'Hello Ben!')) === 'delivered', { timeout: 2000, what: 'the delivered mark' });

  // Ben opens the chat: he reads it, and Ann's mark turns to read.
  await openChat(b, 'Ann Archer');
  assert.deepEqual(await bodies(b), ['Hello Ben!']);
  await until(async () => (await markOf(a, 'Hello Ben!')) === 'read', { timeout: 2000, what: 'the read mark' });
  const seen = await a.evaluate(() => window.__marks);
  assert.equal(seen[0], 'sending', `marks seen: ${seen}`);
  assert.ok(seen.includes('delivered') && seen.includes('read'), `marks seen: ${seen}`);
  for (let i = 1; i < seen.length; i++) assert.ok(ORDER.indexOf(seen[i]) > ORDER.indexOf(seen[i - 1]), `marks went backwards: ${seen}`);
  assert.equal(await convItem(b, 'Ann Archer').locator('[data-testid=unread-badge]').count(), 0);

  // Ben answers; Ann has the chat open and sees it live.
  t0 = Date.now();
  await send(b, 'Hi Ann, got it.');
  await until(async () => (await bodies(a)).includes('Hi Ann, got it.'), { timeout: 2000, what: 'Ann to receive the reply' });
  assert.ok(Date.now() - t0 < 2000);
  await until(async () => (await markOf(b, 'Hi Ann, got it.')) === 'read', { timeout: 2000, what: 'Ben to see his reply read' });

  // A quick burst from each side arrives complete and in order, without duplicates.
  for (const n of [1, 2, 3]) await send(a, `ann ${n}`);
  for (const n of [1, 2]) await send(b, `ben ${n}`);
  const expected = ['Hello Ben!', 'Hi Ann, got it.', 'ann 1', 'ann 2', 'ann 3', 'ben 1', 'ben 2'];
  const sorted = async (page) => {
    const list = await bodies(page);
    return list.length === expected.length && list;
  };
  const onA = await until(() => sorted(a), { timeout: 3000, what: 'all messages at Ann' });
  const onB = await until(() => sorted(b), { timeout: 3000, what: 'all messages at Ben' });
  // Each side's own burst is in its order; both sides agree on one order (the server's seq).
  assert.deepEqual(onA, onB);
  assert.deepEqual(onA.filter((x) => x.startsWith('ann')), ['ann 1', 'ann 2', 'ann 3']);
  assert.deepEqual(onA.filter((x) => x.startsWith('ben')), ['ben 1', 'ben 2']);
  const seqs = await a.$$eval('[data-testid=message][data-status=confirmed]', (els) => els.map((e) => Number(e.dataset.seq)));
  assert.deepEqual(seqs, seqs.slice().sort((x, y) => x - y));
  assert.equal(new Set(seqs).size, seqs.length);

  // After a reload the marks are still there (kept by this browser: the conversation list
  // does not carry the peer's read position).
  await a.reload();
  await openChat(a, 'Ben Baker');
  await until(async () => (await markOf(a, 'ann 3')) === 'read', { what: 'read marks after a reload' });
  assert.deepEqual(ann.errors, []);
  assert.deepEqual(ben.errors, []);
});

test('emoji from the picker arrive intact; markup in a message stays text and runs nothing', async () => {
  const a = ann.page;
  const b = ben.page;
  await a.click('[data-testid=emoji-toggle]');
  await a.locator('[data-testid=emoji-picker]').waitFor();
  await a.click('[data-testid=emoji-cat-food]');
  await a.click('[data-testid=emoji][data-emoji="🍕"]');
  await a.click('[data-testid=emoji-cat-people]');
  await a.click('[data-testid=emoji][data-emoji="👍"]');
  await a.click('[data-testid=emoji-cat-flags]');
  await a.click('[data-testid=emoji][data-emoji="🏳️‍🌈"]');
  await a.keyboard.press('Escape');
  assert.equal(await a.locator('[data-testid=emoji-picker]').isHidden(), true);
  await a.locator('[data-testid=composer]').press('End');
  await a.locator('[data-testid=composer]').pressSequentially(' pizza?');
  assert.equal(await a.inputValue('[data-testid=composer]'), '🍕👍🏳️‍🌈 pizza?');
  await a.locator('[data-testid=composer]').press('Enter');
  await until(async () => (await bodies(b)).includes('🍕👍🏳️‍🌈 pizza?'), { timeout: 2000, what: 'the emoji message at Ben' });

  // Recently used emoji are offered first next time, kept in this browser's storage.
  await a.click('[data-testid=emoji-toggle]');
  await a.locator('[data-testid=emoji-cat-recent][aria-selected=true]').waitFor();
  const recent = await a.$$eval('[data-testid=emoji-grid] [data-testid=emoji]', (els) => els.slice(0, 3).map((e) => e.dataset.emoji));
  assert.deepEqual(recent, ['🏳️‍🌈', '👍', '🍕']);
  await a.keyboard.press('Escape');

  const evil = ['<img src=x onerror="window.__pwned=1">', '<script>window.__pwned=2</script>', '<b>bold?</b> &amp; "quotes"'];
  for (const text of evil) await send(a, text);
  for (const page of [a, b]) {
    await until(async () => (await bodies(page)).slice(-3).join('\n') === evil.join('\n'), { timeout: 2000, what: 'the markup messages as text' });
    const inside = await page.$$eval('[data-testid=messages] img, [data-testid=messages] script, [data-testid=messages] b', (els) => els.filter((e) => !e.closest('.avatar')).length);
    assert.equal(inside, 0, 'no element was made from message text');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
  }
  // Previews in the sidebar are text too.
  assert.equal(await convItem(b, 'Ann Archer').locator('[data-testid=conv-preview]').textContent(), evil[2]);
});

test('messages sent while the receiver’s page is closed are there, in order, with an unread badge of 3', async () => {
  const a = ann.page;
  await ben.page.close();
  for (const n of [1, 2, 3]) await send(a, `while you were away ${n}`);
  await until(async () => (await bodies(a)).slice(-3).length === 3 && (await a.$$eval('[data-testid=message][data-status=sending]', (e) => e.length)) === 0, { what: 'sends to settle' });

  const b = await newTab(ben);
  ben.page = b;
  await b.locator('[data-testid=app]').waitFor();
  const badge = convItem(b, 'Ann Archer').locator('[data-testid=unread-badge]');
  await until(async () => (await badge.textContent().catch(() => null)) === '3', { timeout: 3000, what: 'an unread badge of 3' });
  assert.equal(await b.title(), '(3) webim');
  // Most recent conversation first, its preview the last message.
  assert.equal(await b.locator('[data-testid=conv-item]').first().getAttribute('data-title'), 'Ann Archer');
  assert.match(await convItem(b, 'Ann Archer').locator('[data-testid=conv-preview]').textContent(), /while you were away 3/);

  await openChat(b, 'Ann Archer');
  await until(async () => (await bodies(b)).slice(-3).join('|') === 'while you were away 1|while you were away 2|while you were away 3', { what: 'the three messages in order' });
  await until(async () => (await badge.count()) === 0 && (await b.title()) === 'webim', { what: 'the badge and title to clear once read' });
  await until(async () => (await markOf(a, 'while you were away 3')) === 'read', { timeout: 2000, what: 'Ann to see them read' });
  assert.deepEqual(ben.errors, []);
});
