// Receipt marks come from the server, not from the browser that saw them happen: a new
// browser (empty storage) shows older messages as read / delivered. And a friend request
// shows up as outgoing in the asker's other browser, without a "wants to be your friend"
// toast there.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, person, newTab, signUp, signIn, befriend, openChat, send, bodies, markOf, until, uniqueName } from './harness.js';

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

test('a new browser shows the read and delivered marks of older messages', async () => {
  const a = ann.page;
  await openChat(a, 'Ben Baker');
  await send(a, 'first');
  await send(a, 'second');
  await openChat(ben.page, 'Ann Archer');
  await until(async () => (await markOf(a, 'second')) === 'read', { what: 'Ann to see her messages read' });

  // Ben reloads and does not open the chat: the next message reaches his browser, so it is
  // delivered, not read.
  await ben.page.close();
  ben.page = await newTab(ben);
  await ben.page.waitForSelector('[data-testid=app]');
  await send(a, 'third');
  await until(async () => (await markOf(a, 'third')) === 'delivered', { what: 'the delivered mark' });

  // Ann signs in from another browser: nothing in its storage, the marks come from the server.
  const ann2 = await person(browser, server);
  try {
    await signIn(ann2, ann.username);
    await openChat(ann2.page, 'Ben Baker');
    await until(async () => (await bodies(ann2.page)).length === 3, { what: 'the history in the new browser' });
    assert.equal(await markOf(ann2.page, 'first'), 'read');
    assert.equal(await markOf(ann2.page, 'second'), 'read');
    assert.equal(await markOf(ann2.page, 'third'), 'delivered');
    // Nothing about receipts is kept in the browser's storage.
    assert.deepEqual(await ann2.page.evaluate(() => Object.keys(localStorage).filter((k) => /mark/i.test(k))), []);

    // Live events still raise the marks there: Ben opens the chat and reads 'third'.
    await openChat(ben.page, 'Ann Archer');
    await until(async () => (await markOf(ann2.page, 'third')) === 'read', { what: 'the read mark in the new browser' });
    assert.deepEqual(ann2.errors, []);
  } finally {
    await ann2.context.close();
  }
  assert.deepEqual(ann.errors, []);
  assert.deepEqual(ben.errors, []);
});

test("a friend request is listed as outgoing in the asker's other browser, with no toast there", async () => {
  const cal = await signUp(await person(browser, server), uniqueName('cal'), 'Cal Carter');
  const ann2 = await person(browser, server);
  try {
    await signIn(ann2, ann.username);
    // Her other browser has the inbox open already: it must update while open.
    await ann2.page.click('[data-testid=open-inbox]');
    await ann2.page.locator('[data-testid=inbox]').waitFor();
    const a = ann.page;
    await a.fill('[data-testid=search-input]', cal.username);
    const row = a.locator(`[data-testid=user-result][data-username="${cal.username}"]`);
    await row.locator('[data-testid=add-friend]').click();
    await row.locator('[data-testid=requested]').waitFor();
    await a.fill('[data-testid=search-input]', '');

    // Cal is told; Ann's other browser lists the request as hers, without a reload.
    await cal.page.locator('[data-testid=toast]', { hasText: 'Ann Archer wants to be your friend.' }).waitFor();
    await ann2.page.locator('[data-testid=outgoing-request]', { hasText: `@${cal.username}` }).waitFor({ timeout: 3000 });
    assert.equal(await ann2.page.locator('[data-testid=friend-request]').count(), 0);
    for (const page of [a, ann2.page]) {
      assert.equal(await page.locator('[data-testid=toast]', { hasText: 'wants to be your friend' }).count(), 0);
    }
    await ann2.page.click('[data-testid=dialog-close]');
    assert.deepEqual(ann2.errors, []);
    assert.deepEqual(cal.errors, []);
  } finally {
    await ann2.context.close();
  }
});
