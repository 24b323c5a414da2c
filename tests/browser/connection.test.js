// The message connection: one long poll per browser shared by its tabs (a closed leader is
// replaced by itself), and a server restart mid-conversation that the client rides out on
// its own, showing "reconnecting…" meanwhile and missing nothing.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, person, newTab, signUp, befriend, openChat, send, bodies, until, uniqueName, convItem } from './harness.js';

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

const polls = (page) => {
  const count = { n: 0 };
  page.on('request', (r) => {
    if (r.url().includes('/api/v1/events')) count.n += 1;
  });
  return count;
};

test('tabs share one long poll; when the polling tab closes another takes over', async () => {
  const jo = await signUp(await person(browser, server), uniqueName('jo'), 'Jo');
  const kim = await signUp(await person(browser, server), uniqueName('kim'), 'Kim');
  await befriend(jo, kim);
  const first = jo.page;
  const firstPolls = polls(first);
  const secondLists = { n: 0 };
  const second = await jo.context.newPage();
  second.on('pageerror', (e) => jo.errors.push(e.message));
  const secondPolls = polls(second);
  second.on('request', (r) => { if (r.url().endsWith('/api/v1/conversations')) secondLists.n += 1; });
  await second.goto('/');
  await second.locator('[data-testid=app]').waitFor();
  await openChat(kim.page, 'Jo');

  await send(kim.page, 'to both tabs');
  for (const page of [first, second]) {
    await until(async () => (await convItem(page, 'Kim').locator('[data-testid=conv-preview]').textContent()).includes('to both tabs'), { timeout: 2000, what: 'both tabs to get the message' });
  }
  // The second tab never polled: the first one holds the lock and shares what it gets.
  assert.ok(firstPolls.n >= 1, 'the first tab polls');
  assert.equal(secondPolls.n, 0, 'the second tab does not poll');
  // It listened before loading, so the shared answers continue its state: no reload needed.
  assert.equal(secondLists.n, 1, 'the second tab loaded its conversations once');

  await first.close();
  await until(() => secondPolls.n >= 1, { timeout: 3000, what: 'the second tab to take over polling' });
  await send(kim.page, 'after the handover');
  await until(async () => (await convItem(second, 'Kim').locator('[data-testid=conv-preview]').textContent()).includes('after the handover'), { timeout: 2000, what: 'the new leader to get messages' });
  await openChat(second, 'Kim');
  assert.deepEqual(await bodies(second), ['to both tabs', 'after the handover']);
  assert.deepEqual(jo.errors, []);
  await Promise.all([jo.context.close(), kim.context.close()]);
});

test('a server restart mid-conversation: "reconnecting…", then it recovers and gets what was sent meanwhile', async () => {
  const lea = await signUp(await person(browser, server), uniqueName('lea'), 'Lea');
  const max = await signUp(await person(browser, server), uniqueName('max'), 'Max');
  await befriend(lea, max);
  await openChat(lea.page, 'Max');
  await openChat(max.page, 'Lea');
  await send(lea.page, 'before the restart');
  await until(async () => (await bodies(max.page)).includes('before the restart'), { timeout: 2000, what: 'the first message' });
  const banner = max.page.locator('[data-testid=conn-banner]');
  assert.equal(await banner.isHidden(), true);
  // Max's side stays cut off a little longer than the server is down, so what Lea sends
  // after the restart is certainly sent while Max is still reconnecting.
  let maxCutOff = false;
  await max.page.route('**/api/v1/events?*', (route) => (maxCutOff ? route.abort('connectionrefused') : route.continue()));

  maxCutOff = true;
  await server.stop('SIGKILL');
  await banner.waitFor({ state: 'visible', timeout: 5000 });
  assert.match(await banner.textContent(), /Reconnecting…/);

  // Lea writes while the server is down: it fails visibly and can be retried.
  await send(lea.page, 'sent while it was down');
  const failed = lea.page.locator('[data-testid=message][data-status=failed]');
  await failed.waitFor({ timeout: 5000 });
  assert.match(await failed.locator('[data-testid=send-error]').textContent(), /Cannot reach the server/);

  await server.start();
  // Nothing new yet: Lea's banner goes away by itself once the server answers.
  await lea.page.locator('[data-testid=conn-banner]').waitFor({ state: 'hidden', timeout: 20000 });
  assert.equal(await banner.isVisible(), true, 'Max is still reconnecting');
  await failed.locator('[data-testid=retry]').click();
  await send(lea.page, 'and one more');
  await until(async () => (await lea.page.locator('[data-testid=message][data-status=confirmed]').count()) === 3, { timeout: 5000, what: 'Lea’s messages to be stored' });

  // Max's client comes back by itself and gets both, in order, once each.
  maxCutOff = false;
  await banner.waitFor({ state: 'hidden', timeout: 35000 });
  const expected = ['before the restart', 'sent while it was down', 'and one more'];
  await until(async () => (await bodies(max.page)).join('|') === expected.join('|'), { timeout: 5000, what: 'everything, once, in order' });
  // And it keeps working live afterwards.
  await send(max.page, 'back online');
  await until(async () => (await bodies(lea.page)).includes('back online'), { timeout: 3000, what: 'a live message after recovery' });
  const seqs = await max.page.$$eval('[data-testid=message][data-status=confirmed]', (els) => els.map((e) => Number(e.dataset.seq)));
  assert.deepEqual(seqs, [1, 2, 3, 4]);
  assert.deepEqual(max.errors, []);
  assert.deepEqual(lea.errors, []);
});

test('a session that ends sends every tab back to sign-in with a message', async () => {
  const ned = await signUp(await person(browser, server), uniqueName('ned'), 'Ned');
  const oli = await signUp(await person(browser, server), uniqueName('oli'), 'Oli');
  await befriend(ned, oli);
  const second = await newTab(ned);
  await second.locator('[data-testid=app]').waitFor();
  // The cookie disappears (expired, or cleared by the person): the next poll is refused.
  await ned.context.clearCookies();
  await oli.page.evaluate(async () => {
    const conv = [...window.webim.state.convs.values()][0];
    await fetch('/api/v1/messages', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ to: { user: conv.peer.id }, client_msg_id: 'wake-up', body: 'wake up' }) });
  });
  for (const page of [ned.page, second]) {
    await page.locator('[data-testid=auth-screen]').waitFor({ timeout: 5000 });
    assert.match(await page.textContent('[data-testid=auth-screen]'), /session has ended|signed out/i);
  }
  // Signing in again in one tab brings the other back too.
  await ned.page.fill('[data-testid=auth-username]', ned.username);
  await ned.page.fill('[data-testid=auth-password]', 'correct horse battery');
  await ned.page.click('[data-testid=auth-submit]');
  await second.locator('[data-testid=app]').waitFor({ timeout: 5000 });
  assert.deepEqual(ned.errors, []);
});
