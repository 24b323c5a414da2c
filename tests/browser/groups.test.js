// Three people and a group: create, add a friend, approve a join request, chat, rename,
// promote, recall, picture, leave and dissolve — each change seen live by the others.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, person, signUp, befriend, convItem, openChat, send, bodies, until, uniqueName, makePng } from './harness.js';

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

test('three people create and use a group', async () => {
  const gus = await signUp(await person(browser, server), uniqueName('gus'), 'Gus');
  const hal = await signUp(await person(browser, server), uniqueName('hal'), 'Hal');
  const ivy = await signUp(await person(browser, server), uniqueName('ivy'), 'Ivy');
  await befriend(gus, hal);
  const g = gus.page;
  const name = `Trio ${Date.now().toString(36)}`;

  // Gus creates an approval group and lands in its chat.
  await g.click('[data-testid=tab-groups]');
  await g.click('[data-testid=new-group]');
  await g.fill('[data-testid=group-name]', name);
  await g.check('[data-testid=policy-approval]');
  await g.click('[data-testid=create-group]');
  await g.locator('[data-testid=chat-title]').filter({ hasText: name }).waitFor();
  await g.locator('[data-testid=group-item]', { hasText: name }).waitFor();

  // He adds his friend Hal from the group's info; Hal sees the group appear live.
  await g.click('[data-testid=chat-info]');
  await g.locator('[data-testid=member][data-role=owner]').waitFor();
  await g.selectOption('[data-testid=add-member-select]', { label: `Hal (@${hal.username})` });
  await g.click('[data-testid=add-member]');
  await g.locator(`[data-testid=member][data-username="${hal.username}"][data-role=member]`).waitFor();
  await g.click('[data-testid=dialog-close]');
  await convItem(hal.page, name).waitFor({ timeout: 3000 });

  // Ivy finds the group and asks to join; Gus approves from his inbox.
  await ivy.page.fill('[data-testid=search-input]', name);
  await ivy.page.locator('[data-testid=group-result] [data-testid=join-group]').click();
  await ivy.page.locator('[data-testid=group-result]', { hasText: 'Requested' }).waitFor();
  await g.locator('[data-testid=inbox-badge]:not([hidden])').waitFor({ timeout: 3000 });
  await g.click('[data-testid=open-inbox]');
  await g.locator(`[data-testid=join-request] [data-testid=accept-join]`).click();
  await g.locator('[data-testid=join-request]').waitFor({ state: 'detached' });
  await g.click('[data-testid=dialog-close]');
  await ivy.page.fill('[data-testid=search-input]', '');
  await convItem(ivy.page, name).waitFor({ timeout: 3000 });
  await until(async () => /3 members/.test(await g.textContent('[data-testid=chat-sub]')), { timeout: 2000, what: 'three members' });

  // Everyone chats; each message reaches the other two live, in one order, with names.
  await openChat(hal.page, name);
  await openChat(ivy.page, name);
  await send(g, 'Welcome, both of you!');
  for (const p of [hal, ivy]) await until(async () => (await bodies(p.page)).includes('Welcome, both of you!'), { timeout: 2000, what: `${p.displayName} to get the welcome` });
  await send(hal.page, 'Thanks Gus');
  await until(async () => (await bodies(ivy.page)).includes('Thanks Gus'), { timeout: 2000, what: 'Ivy to get Hal’s message' });
  await send(ivy.page, 'Hi all 👋');
  const all = ['Welcome, both of you!', 'Thanks Gus', 'Hi all 👋'];
  for (const p of [gus, hal, ivy]) await until(async () => (await bodies(p.page)).join('|') === all.join('|'), { timeout: 2000, what: `all three messages at ${p.displayName}` });
  const names = await g.$$eval('[data-testid=message-name]', (els) => els.map((e) => e.textContent));
  assert.deepEqual(names, ['You', 'Hal', 'Ivy']);

  // Gus recalls his message; the others see it recalled.
  await g.locator('[data-testid=message]', { hasText: 'Welcome, both of you!' }).hover();
  await g.locator('[data-testid=message]', { hasText: 'Welcome, both of you!' }).locator('[data-testid=recall]').click();
  for (const p of [hal, ivy]) {
    await until(async () => (await p.page.textContent('[data-testid=message] [data-testid=message-body]')) === 'This message was recalled', { timeout: 2000, what: `${p.displayName} to see the recall` });
  }

  // Gus renames the group and makes Hal an admin.
  await g.click('[data-testid=chat-info]');
  await g.fill('[data-testid=rename-input]', `${name} (renamed)`);
  await g.click('[data-testid=rename-save]');
  for (const p of [hal, ivy]) await until(async () => (await p.page.textContent('[data-testid=chat-title]')) === `${name} (renamed)`, { timeout: 2000, what: `${p.displayName} to see the new name` });
  await g.locator(`[data-testid=member][data-username="${hal.username}"] [data-testid=promote]`).click();
  await g.locator(`[data-testid=member][data-username="${hal.username}"][data-role=admin]`).waitFor();
  await hal.page.click('[data-testid=chat-info]');
  await hal.page.locator(`[data-testid=member][data-username="${hal.username}"][data-role=admin]`).waitFor();
  // As an admin, Hal may rename but not dissolve; he may leave.
  assert.equal(await hal.page.locator('[data-testid=rename-input]').count(), 1);
  assert.equal(await hal.page.locator('[data-testid=dissolve-group]').count(), 0);
  await hal.page.click('[data-testid=dialog-close]');

  // A new group picture reaches the members.
  await g.click('[data-testid=change-group-avatar]');
  await g.setInputFiles('[data-testid=avatar-file]', { name: 'g.png', mimeType: 'image/png', buffer: await makePng(120) });
  await g.locator('[data-testid=crop-preview]:not([hidden])').waitFor();
  await g.click('[data-testid=crop-upload]');
  await g.locator('[data-testid=cropper]').waitFor({ state: 'detached' });
  await until(async () => /^\/avatars\//.test(await hal.page.getAttribute('.chat-head img', 'src')), { timeout: 2000, what: 'Hal to see the group picture' });
  await g.click('[data-testid=dialog-close]');

  // Ivy leaves; the others see two members.
  await ivy.page.click('[data-testid=chat-info]');
  await ivy.page.click('[data-testid=leave-group]');
  await ivy.page.click('[data-testid=confirm-yes]');
  await ivy.page.locator('[data-testid=chat-empty]').waitFor();
  assert.equal(await convItem(ivy.page, `${name} (renamed)`).count(), 0);
  await until(async () => /2 members/.test(await hal.page.textContent('[data-testid=chat-sub]')), { timeout: 2000, what: 'two members left' });

  // Gus dissolves it; Hal loses it live.
  await g.click('[data-testid=chat-info]');
  await g.click('[data-testid=dissolve-group]');
  await g.click('[data-testid=confirm-yes]');
  await hal.page.locator('[data-testid=chat-empty]').waitFor({ timeout: 3000 });
  await until(async () => (await convItem(hal.page, `${name} (renamed)`).count()) === 0, { what: 'the group gone at Hal' });
  await hal.page.locator('[data-testid=toast]', { hasText: 'dissolved' }).waitFor();
  for (const p of [gus, hal, ivy]) assert.deepEqual(p.errors, [], `${p.displayName}'s page errors`);
});
