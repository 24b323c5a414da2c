// Screenshots of the main screens for docs/screenshots/: desktop in every theme, the narrow
// (360 px) list and chat, the sign-in screen and the emoji picker. The scene is set through
// the API; the test also checks that the layout stacks on a narrow screen.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, person, signIn, apiUser, openChat, shot, until, uniqueName, makePng, convItem } from './harness.js';

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

async function scene() {
  const alice = await apiUser(server, uniqueName('alice'), 'Alice Martin');
  const bruno = await apiUser(server, uniqueName('bruno'), 'Bruno Costa');
  const chloe = await apiUser(server, uniqueName('chloe'), 'Chloé Dubois');
  const dev = await apiUser(server, uniqueName('dev'), 'Dev Patel');
  await bruno.call('PUT', '/me/avatar', await makePng(128));
  for (const f of [bruno, chloe, dev]) await alice.befriend(f);
  const { group } = await alice.call('POST', '/groups', { name: 'Weekend hike 🥾', join_policy: 'open' });
  for (const m of [bruno, chloe, dev]) await m.call('POST', `/groups/${group.id}/join`);
  await chloe.say({ group: group.id }, 'Saturday looks sunny ☀️ — who is in?');
  await dev.say({ group: group.id }, 'Count me in! I can drive 🚗');
  await dev.say({ user: alice.id }, 'Did you see the new release notes?');
  await alice.say({ user: dev.id }, 'Not yet, reading them tonight.');
  const b = { user: alice.id };
  const a = { user: bruno.id };
  await bruno.say(b, 'Hey Alice! Are we still on for coffee tomorrow? ☕');
  await alice.say(a, 'Yes! 10 o’clock at the usual place?');
  await bruno.say(b, 'Perfect.\nI will bring the book I told you about 📚');
  await alice.say(a, '🎉🎉');
  await bruno.say(b, 'By the way, the trail map for Saturday is ready — 14 km with a lunch stop by the lake.');
  await alice.say(a, 'Sounds lovely. See you tomorrow!');
  await chloe.say({ user: alice.id }, 'Can you send me the photos from last week?');
  await chloe.say({ user: alice.id }, 'The ones from the lake 🏞️');
  return { alice, bruno, chloe, dev, group };
}

test('screenshots of the main screens, desktop and narrow, in each theme', async () => {
  const s = await scene();
  const p = await person(browser, server);
  await signIn(p, s.alice.username);
  const { page } = p;
  await convItem(page, 'Bruno Costa').waitFor();
  await openChat(page, 'Bruno Costa');
  await until(async () => (await page.locator('[data-testid=message]').count()) === 6, { what: 'the conversation' });
  // Bruno reads now, so the marks show it live (the conversation list does not carry the
  // peer's read position, so reads from before the page loaded would not show).
  const cid = await convItem(page, 'Bruno Costa').getAttribute('data-cid');
  await s.bruno.call('POST', `/conversations/${cid}/read`, { seq: 6 });
  await until(async () => (await page.locator('[data-testid=mark][data-mark=read]').count()) === 3, { what: 'read marks' });
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await page.waitForTimeout(300);
  // Chloé's two messages stay unread in the list.
  assert.equal(await convItem(page, 'Chloé Dubois').locator('[data-testid=unread-badge]').textContent(), '2');

  for (const theme of ['light', 'dark', 'terminal', 'sakura']) {
    await page.evaluate((t) => { document.documentElement.dataset.theme = t; }, theme);
    await page.waitForTimeout(150);
    await shot(page, `main-${theme}.png`);
  }
  await page.evaluate(() => { document.documentElement.dataset.theme = 'light'; });
  await page.click('[data-testid=emoji-toggle]');
  await page.waitForTimeout(150);
  await shot(page, 'emoji-picker.png');
  await page.keyboard.press('Escape');

  // Narrow: one pane at a time, with a way back.
  await page.setViewportSize({ width: 360, height: 740 });
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await page.waitForTimeout(150);
  const pinned = await page.$eval('[data-testid=messages]', (s) => s.scrollHeight - s.scrollTop - s.clientHeight);
  assert.ok(pinned < 5, 'the chat stays scrolled to the newest message');
  assert.equal(await page.locator('.sidebar').isVisible(), false, 'the sidebar hides behind the open chat');
  assert.equal(await page.locator('[data-testid=chat-back]').isVisible(), true);
  await shot(page, 'narrow-chat.png');
  await page.click('[data-testid=chat-back]');
  await page.locator('.sidebar').waitFor({ state: 'visible' });
  await page.mouse.move(200, 700);
  assert.equal(await page.locator('[data-testid=chat-pane]').isVisible(), false);
  const overflow = await page.evaluate(() => {
    const wide = [...document.querySelectorAll('.sidebar, .sidebar *')].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5);
    return document.documentElement.scrollWidth - document.documentElement.clientWidth + wide.length;
  });
  assert.equal(overflow, 0, 'nothing sticks out sideways at 360 px');
  await shot(page, 'narrow-list.png');
  await page.evaluate(() => { document.documentElement.dataset.theme = 'dark'; });
  await openChat(page, 'Weekend hike 🥾');
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await page.waitForTimeout(150);
  await shot(page, 'narrow-group-dark.png');
  // The browser's Back goes from a chat to the list, not out of the app.
  await page.goBack();
  await page.locator('.sidebar').waitFor({ state: 'visible' });
  assert.equal(await page.locator('[data-testid=chat-pane]').isVisible(), false);
  assert.ok(page.url().startsWith(server.url));
  await openChat(page, 'Weekend hike 🥾');

  // Dialogs at desktop size: group info (dark) and profile & settings (light).
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.click('[data-testid=chat-info]');
  await page.locator('[data-testid=member]').nth(3).waitFor();
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await shot(page, 'group-info-dark.png');
  await page.keyboard.press('Escape');
  await page.evaluate(() => { document.documentElement.dataset.theme = 'light'; });
  await page.click('[data-testid=open-profile]');
  await page.locator('[data-testid=profile-dialog]').waitFor();
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await shot(page, 'profile-light.png');
  await page.keyboard.press('Escape');

  const q = await person(browser, server);
  await q.page.waitForSelector('[data-testid=auth-screen]');
  await shot(q.page, 'signin.png');
  assert.deepEqual(p.errors, []);
});
