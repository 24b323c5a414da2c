// Boot: decides between the sign-in screen and the main screen (GET /me says whether the
// session cookie is still good), starts the message connection, and keeps the tabs of one
// browser in step when one of them signs in or out.

import { api, onUnauthorized } from './api.js';
import { prefs } from './prefs.js';
import { State } from './state.js';
import { Connection } from './connection.js';
import { renderAuth } from './ui/auth.js';
import { mountApp } from './ui/app.js';
import { applyTheme } from './ui/theme.js';
import { h } from './dom.js';

const root = document.getElementById('app');
const session = 'BroadcastChannel' in window ? new BroadcastChannel('webim-session') : null;
let current = null;
let starting = false;

applyTheme(prefs.theme());

function showAuth(notice = '') {
  document.title = 'Sign in · webim';
  renderAuth(root, {
    notice,
    onSignedIn: (user) => {
      if (session) session.postMessage({ type: 'signed-in' });
      start(user.id);
    },
  });
}

function showFatal(e) {
  document.title = 'webim';
  root.replaceChildren(
    h('main', { class: 'auth', testid: 'fatal' },
      h('div', { class: 'auth-card' },
        h('h1', { text: 'webim cannot start' }),
        h('p', { class: 'form-error', role: 'alert', text: e.message }),
        h('button', { type: 'button', class: 'btn primary wide', text: 'Try again', onclick: () => boot() }))),
  );
}

function stop() {
  if (!current) return;
  current.conn.stop();
  current.ui.unmount();
  current = null;
}

function signedOut(notice) {
  if (!current && !starting) return;
  stop();
  starting = false;
  showAuth(notice);
}

async function signOut() {
  try {
    await api.post('/auth/logout', undefined, { quiet401: true });
  } catch (e) {
    if (e.status !== 401) {
      if (current) current.ui.toast(e.message, 'error');
      return;
    }
  }
  if (session) session.postMessage({ type: 'signed-out' });
  stop();
  showAuth('You signed out.');
}

async function start(userId) {
  if (starting) return;
  starting = true;
  stop();
  root.replaceChildren(h('div', { class: 'splash', role: 'status', text: 'Loading…' }));
  const state = new State();
  let ui = null;
  const conn = new Connection({
    userId,
    apply: (events) => state.applyEvents(events),
    resync: () => state.resync(),
    reconcile: () => state.reconcile(),
    unauthorized: () => signedOut('Your session has ended. Please sign in again.'),
    status: (s) => ui && ui.setStatus(s),
  });
  // Listen to the other tabs first, then load: nothing shared in between is missed.
  conn.listen();
  let cursor;
  try {
    cursor = await state.load();
  } catch (e) {
    conn.stop();
    starting = false;
    if (e.status === 401) showAuth();
    else showFatal(e);
    return;
  }
  if (state.me.id !== userId) {
    // Someone else signed in (in another tab) while this one was loading: start over.
    conn.stop();
    starting = false;
    boot();
    return;
  }
  ui = mountApp(root, { state, conn, signOut });
  current = { state, conn, ui };
  starting = false;
  conn.start(cursor);
  // For tests and debugging: the state is inspectable, never the token (there is none here).
  window.webim = { state, conn };
}

async function boot() {
  let me;
  try {
    me = await api.get('/me', { quiet401: true });
  } catch (e) {
    if (e.status === 401) showAuth();
    else showFatal(e);
    return;
  }
  start(me.user.id);
}

onUnauthorized(() => signedOut('Your session has ended. Please sign in again.'));

if (session) {
  session.onmessage = (e) => {
    const msg = e.data || {};
    if (msg.type === 'signed-in') {
      stop();
      boot();
    }
    else if (msg.type === 'signed-out') signedOut('You signed out in another tab.');
  };
}

boot();
