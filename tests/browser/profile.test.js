// Settings and profile that follow a person: a theme chosen in one browser applies in their
// other browser live and after a reload; a new picture shows up in a friend's view.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, person, signUp, signIn, befriend, convItem, until, uniqueName, makePng, openChat } from './harness.js';

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

const themeOf = (page) => page.evaluate(() => document.documentElement.dataset.theme);

test('a theme chosen in one browser applies live in the other and survives a reload', async () => {
  const name = uniqueName('cleo');
  const first = await signUp(await person(browser, server), name, 'Cleo');
  const second = await person(browser, server);
  await signIn(second, name);
  // Both start on the same theme (none chosen yet: the system's, light here).
  assert.equal(await themeOf(first.page), 'light');
  assert.equal(await themeOf(second.page), 'light');
  const bg = () => second.page.evaluate(() => getComputedStyle(document.querySelector('.sidebar')).backgroundColor);
  const lightBg = await bg();

  await first.page.click('[data-testid=open-theme]');
  await first.page.click('[data-testid=theme-dark]');
  assert.equal(await themeOf(first.page), 'dark');
  const t0 = Date.now();
  await until(async () => (await themeOf(second.page)) === 'dark', { timeout: 2000, what: 'the other browser to turn dark' });
  assert.ok(Date.now() - t0 < 2000);
  assert.notEqual(await bg(), lightBg, 'the colours really changed');

  await second.page.reload();
  await second.page.locator('[data-testid=app]').waitFor();
  assert.equal(await themeOf(second.page), 'dark');

  // A third browser that never saw the choice gets it from the server.
  const third = await person(browser, server);
  await signIn(third, name);
  await until(async () => (await themeOf(third.page)) === 'dark', { what: 'a fresh browser to load the saved theme' });

  // And back the other way, from the profile dialog this time.
  await second.page.click('[data-testid=open-profile]');
  await second.page.locator('[data-testid=theme-radio-terminal]').check({ force: true });
  await until(async () => (await themeOf(first.page)) === 'terminal' && (await themeOf(third.page)) === 'terminal', { timeout: 2000, what: 'the terminal theme everywhere' });
  const mono = await first.page.evaluate(() => getComputedStyle(document.body).fontFamily);
  assert.match(mono, /mono/i);
  for (const p of [first, second, third]) assert.deepEqual(p.errors, []);
  await Promise.all([first, second, third].map((p) => p.context.close()));
});

test('an uploaded, cropped picture shows in the friend’s view', async () => {
  const dee = await signUp(await person(browser, server), uniqueName('dee'), 'Dee');
  const eli = await signUp(await person(browser, server), uniqueName('eli'), 'Eli');
  await befriend(dee, eli);
  const peerAvatar = () => convItem(eli.page, 'Dee').locator('img').getAttribute('src');
  assert.match(await peerAvatar(), /^\/api\/v1\/users\/\d+\/avatar$/);
  await openChat(eli.page, 'Dee');

  await dee.page.click('[data-testid=open-profile]');
  await dee.page.click('[data-testid=change-avatar]');
  await dee.page.locator('[data-testid=cropper]').waitFor();
  assert.equal(await dee.page.locator('[data-testid=crop-upload]').isDisabled(), true);
  await dee.page.setInputFiles('[data-testid=avatar-file]', { name: 'me.png', mimeType: 'image/png', buffer: await makePng(160) });
  // Preview before upload; zoom and move with the keyboard.
  await dee.page.locator('[data-testid=crop-preview]:not([hidden])').waitFor();
  assert.match(await dee.page.getAttribute('[data-testid=crop-preview]', 'src'), /^blob:/);
  await dee.page.locator('[data-testid=crop-stage]').press('+');
  await dee.page.locator('[data-testid=crop-stage]').press('ArrowLeft');
  const uploaded = dee.page.waitForResponse((r) => r.url().endsWith('/api/v1/me/avatar') && r.request().method() === 'PUT');
  await dee.page.click('[data-testid=crop-upload]');
  const res = await uploaded;
  assert.equal(res.status(), 200);
  assert.equal(res.request().headers()['content-type'], 'image/png');
  await dee.page.locator('[data-testid=cropper]').waitFor({ state: 'detached' });
  const url = (await res.json()).user.avatar_url;
  assert.match(url, /^\/avatars\/[0-9a-f]+\.png$/);
  await until(async () => (await dee.page.getAttribute('[data-testid=profile-avatar] img', 'src')) === url, { what: 'own picture in the profile' });

  // Eli sees it live: in the conversation list and the chat header, and it really loads.
  await until(async () => (await peerAvatar()) === url, { timeout: 2000, what: 'the friend to see the new picture' });
  await until(async () => (await eli.page.getAttribute('.chat-head img', 'src')) === url, { what: 'the chat header picture' });
  const loaded = await eli.page.evaluate(async (u) => {
    const img = [...document.querySelectorAll('img')].find((i) => i.getAttribute('src') === u);
    if (!img.complete) await new Promise((r) => { img.onload = r; img.onerror = r; });
    return [img.naturalWidth, img.naturalHeight];
  }, url);
  assert.deepEqual(loaded, [256, 256]);
  assert.deepEqual(dee.errors, []);
  assert.deepEqual(eli.errors, []);
});

test('every API error is shown with its message', async () => {
  const p = await person(browser, server);
  const { page } = p;
  await page.click('[data-testid=auth-tab-signup]');
  await page.fill('[data-testid=auth-username]', 'x');
  await page.fill('[data-testid=auth-password]', 'short');
  await page.click('[data-testid=auth-submit]');
  await until(async () => /username must be 3 to 32 characters/.test(await page.textContent('[data-testid=auth-error]')), { what: 'the username error' });
  const name = uniqueName('fay');
  await page.fill('[data-testid=auth-username]', name);
  await page.click('[data-testid=auth-submit]');
  await until(async () => /password/i.test(await page.textContent('[data-testid=auth-error]')), { what: 'the password error' });
  await signUp(p, name, 'Fay');
  // Signing up again with a taken name, from another browser.
  const q = await person(browser, server);
  await q.page.click('[data-testid=auth-tab-signup]');
  await q.page.fill('[data-testid=auth-username]', name);
  await q.page.fill('[data-testid=auth-password]', 'another long password');
  await q.page.click('[data-testid=auth-submit]');
  await until(async () => /taken/i.test(await q.page.textContent('[data-testid=auth-error]')), { what: 'the taken-username error' });
  await q.page.click('[data-testid=auth-tab-signin]');
  await q.page.fill('[data-testid=auth-username]', name);
  await q.page.fill('[data-testid=auth-password]', 'not the password');
  await q.page.click('[data-testid=auth-submit]');
  await until(async () => (await q.page.textContent('[data-testid=auth-error]')) === 'wrong username or password', { what: 'the sign-in error' });

  // A refused profile change shows the server's message in the dialog.
  await page.click('[data-testid=open-profile]');
  await page.fill('[data-testid=profile-name]', '   ');
  await page.click('[data-testid=save-name]');
  const err = page.locator('[data-testid=profile-dialog] [data-testid=dialog-error]');
  await err.waitFor();
  assert.ok((await err.textContent()).length > 5);

  // Signing out ends the session (cookie cleared); a reload stays signed out.
  await page.keyboard.press('Escape');
  await page.click('[data-testid=sign-out]');
  await page.locator('[data-testid=auth-screen]').waitFor();
  await page.reload();
  await page.locator('[data-testid=auth-screen]').waitFor();
  const cookies = await p.context.cookies();
  assert.equal(cookies.filter((c) => c.name === 'webim_token' && c.value).length, 0);
  assert.deepEqual(p.errors, []);
});
