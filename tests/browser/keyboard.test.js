// Keyboard-only use and labelled controls; desktop notifications when the page is hidden
// (after the person turned them on); names and presence that change live.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, person, apiUser, PASSWORD, bodies, until, uniqueName, convItem } from './harness.js';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

/** Controls without an accessible name, on what is currently shown. */
function unlabelled(page) {
  return page.evaluate(() => {
    const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
    const named = (el) => (el.getAttribute('aria-label') || '').trim() || (el.getAttribute('aria-labelledby') && document.getElementById(el.getAttribute('aria-labelledby'))) || (el.labels && el.labels.length) || (el.textContent || '').trim() || el.getAttribute('title');
    return [...document.querySelectorAll('button, input:not([type=hidden]), textarea, select, [role=tab], [role=menuitemradio]')]
      .filter((el) => (visible(el) || el.classList.contains('sr-only')) && !named(el))
      .map((el) => el.outerHTML.slice(0, 120));
  });
}

async function focusedTestid(page) {
  return page.evaluate(() => document.activeElement && (document.activeElement.dataset.testid || document.activeElement.id || document.activeElement.tagName));
}

async function tabTo(page, predicate, what, max = 40) {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate(predicate)) return;
  }
  throw new Error(`could not reach ${what} with Tab`);
}

test('sign up, chat, pick emoji, switch theme and use dialogs with the keyboard alone; every control is labelled', async () => {
  const friend = await apiUser(server, uniqueName('pat'), 'Pat');
  const name = uniqueName('kay');
  const p = await person(browser, server);
  const { page } = p;
  await page.waitForSelector('[data-testid=auth-screen]');
  assert.deepEqual(await unlabelled(page), []);
  assert.equal(await focusedTestid(page), 'auth-username');
  await page.keyboard.press('Shift+Tab');
  assert.equal(await focusedTestid(page), 'auth-tab-signup');
  await page.keyboard.press('Enter');
  await page.keyboard.type(name);
  await page.keyboard.press('Tab');
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press('Tab');
  await page.keyboard.type('Kay');
  await page.keyboard.press('Enter');
  await page.waitForSelector('[data-testid=app]');

  // Befriended meanwhile by Pat, who writes first.
  const me = await page.evaluate(() => window.webim.state.me.id);
  const { request } = await friend.call('POST', '/friend-requests', { user_id: me });
  await page.locator('[data-testid=inbox-badge]:not([hidden])').waitFor();
  await tabTo(page, () => document.activeElement.dataset.testid === 'open-inbox', 'the inbox button');
  await page.keyboard.press('Enter');
  await page.locator('[data-testid=inbox-dialog]').waitFor();
  assert.deepEqual(await unlabelled(page), []);
  await tabTo(page, () => document.activeElement.dataset.testid === 'accept-friend', 'the accept button');
  await page.keyboard.press('Enter');
  await page.locator('[data-testid=friend-request]').waitFor({ state: 'detached' });
  await page.keyboard.press('Escape');
  await page.locator('[data-testid=inbox-dialog]').waitFor({ state: 'detached' });
  assert.equal(await focusedTestid(page), 'open-inbox', 'focus returns to the button that opened the dialog');
  assert.ok(request.id);
  await friend.say({ user: me }, 'Hi Kay!');
  await convItem(page, 'Pat').locator('[data-testid=unread-badge]').waitFor();

  // To the conversation and into the composer.
  await tabTo(page, () => document.activeElement.dataset.testid === 'conv-item', 'the conversation');
  await page.keyboard.press('Enter');
  await page.locator('[data-testid=chat]').waitFor();
  await until(() => page.evaluate(() => document.activeElement.dataset.testid === 'composer'), { what: 'the composer to have focus' });
  assert.deepEqual(await unlabelled(page), []);
  await page.keyboard.type('line one');
  await page.keyboard.press('Shift+Enter');
  await page.keyboard.type('line two');
  await page.keyboard.press('Enter');
  await until(async () => (await bodies(page)).includes('line one\nline two'), { what: 'a two-line message' });
  const { messages } = await friend.call('GET', `/conversations/${await convItem(page, 'Pat').getAttribute('data-cid')}/messages`);
  assert.equal(messages[messages.length - 1].body, 'line one\nline two');

  // Emoji picker: open, move with the arrows, pick with Enter, close with Escape.
  await page.keyboard.press('Shift+Tab');
  assert.equal(await focusedTestid(page), 'emoji-toggle');
  await page.keyboard.press('Enter');
  await page.locator('[data-testid=emoji-picker]').waitFor();
  assert.deepEqual(await unlabelled(page), []);
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowDown');
  const chosen = await page.evaluate(() => document.activeElement.dataset.emoji);
  await page.keyboard.press('Enter');
  await page.keyboard.press('Escape');
  await page.locator('[data-testid=emoji-picker]').waitFor({ state: 'hidden' });
  assert.equal(await focusedTestid(page), 'composer');
  assert.equal(await page.inputValue('[data-testid=composer]'), chosen);
  await page.keyboard.press('Enter');
  await until(async () => (await bodies(page)).includes(chosen), { what: 'the emoji message' });

  // Theme menu: arrows and Enter.
  await page.focus('[data-testid=open-theme]');
  await page.keyboard.press('Enter');
  await page.locator('[data-testid=theme-menu]').waitFor();
  assert.deepEqual(await unlabelled(page), []);
  await page.keyboard.press('End');
  const last = await page.evaluate(() => document.activeElement.dataset.testid);
  await page.keyboard.press('Enter');
  await until(async () => `theme-${await page.evaluate(() => document.documentElement.dataset.theme)}` === last, { what: 'the theme from the menu' });

  // Every dialog is labelled too.
  for (const opener of ['open-profile', 'chat-info']) {
    await page.focus(`[data-testid=${opener}]`);
    await page.keyboard.press('Enter');
    await page.locator('dialog[open]').waitFor();
    assert.deepEqual(await unlabelled(page), [], `controls in the ${opener} dialog`);
    await page.keyboard.press('Escape');
    await page.locator('dialog[open]').waitFor({ state: 'detached' });
  }
  await page.click('[data-testid=tab-groups]');
  await page.click('[data-testid=new-group]');
  assert.deepEqual(await unlabelled(page), []);
  await page.keyboard.type('Keyboard club');
  await page.keyboard.press('Enter');
  await page.locator('[data-testid=chat-title]', { hasText: 'Keyboard club' }).waitFor();
  await page.focus('[data-testid=chat-info]');
  await page.keyboard.press('Enter');
  await page.locator('[data-testid=member]').first().waitFor();
  assert.deepEqual(await unlabelled(page), [], 'controls in the group dialog');
  assert.deepEqual(p.errors, []);
});

test('desktop notifications for new messages while the page is hidden, once turned on; names and presence live', async () => {
  const friend = await apiUser(server, uniqueName('ron'), 'Ron');
  const name = uniqueName('sue');
  const sue = await apiUser(server, name, 'Sue');
  await friend.befriend(sue);
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, baseURL: server.url });
  await context.addInitScript(() => {
    // A stand-in for the platform's notifications, and a switch for "the page is hidden".
    window.__notes = [];
    window.__hidden = false;
    class FakeNotification {
      constructor(title, options) { window.__notes.push({ title, body: options.body, tag: options.tag }); }
      close() {}
      static requestPermission() { FakeNotification.permission = 'granted'; return Promise.resolve('granted'); }
    }
    FakeNotification.permission = 'default';
    window.Notification = FakeNotification;
    Object.defineProperty(Document.prototype, 'hidden', { configurable: true, get: () => window.__hidden });
    Object.defineProperty(Document.prototype, 'visibilityState', { configurable: true, get: () => (window.__hidden ? 'hidden' : 'visible') });
  });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto('/');
  await page.fill('[data-testid=auth-username]', name);
  await page.fill('[data-testid=auth-password]', PASSWORD);
  await page.click('[data-testid=auth-submit]');
  await page.waitForSelector('[data-testid=app]');
  await convItem(page, 'Ron').waitFor();

  // Off by default: nothing while hidden.
  const hide = (h) => page.evaluate((v) => { window.__hidden = v; document.dispatchEvent(new Event('visibilitychange')); }, h);
  await hide(true);
  await friend.say({ user: sue.id }, 'first, unannounced');
  await convItem(page, 'Ron').locator('[data-testid=unread-badge]').waitFor();
  assert.deepEqual(await page.evaluate(() => window.__notes), []);

  await hide(false);
  await page.click('[data-testid=open-profile]');
  await page.check('[data-testid=notify-toggle]');
  await until(() => page.evaluate(() => localStorage.getItem('webim.notify') === 'true'), { what: 'the setting to stick' });
  await page.keyboard.press('Escape');

  await friend.say({ user: sue.id }, 'while you are here');
  await until(async () => (await convItem(page, 'Ron').locator('[data-testid=unread-badge]').textContent()) === '2', { what: 'the second message' });
  assert.deepEqual(await page.evaluate(() => window.__notes), [], 'no notification while the page is visible');

  await hide(true);
  await friend.say({ user: sue.id }, 'are you there?');
  await until(async () => (await page.evaluate(() => window.__notes.length)) === 1, { timeout: 2000, what: 'a notification' });
  const [note] = await page.evaluate(() => window.__notes);
  assert.equal(note.title, 'Ron');
  assert.equal(note.body, 'are you there?');
  assert.equal(await page.title(), '(3) webim');
  await hide(false);

  // Ron renames himself and comes online: both show up live.
  await friend.call('PATCH', '/me', { display_name: 'Ronald' });
  await convItem(page, 'Ronald').waitFor({ timeout: 2000 });
  await page.click('[data-testid=tab-friends]');
  const dot = page.locator('[data-testid=friend-item][data-name="Ronald"] [data-testid=presence]');
  assert.equal(await dot.getAttribute('data-online'), 'false');
  const poll = friend.call('GET', '/events?timeout=3');
  await until(async () => (await dot.getAttribute('data-online')) === 'true', { timeout: 2000, what: 'Ronald to show online' });
  await poll;
  assert.deepEqual(errors, []);
  await context.close();
});
