// The main screen: sidebar and chat pane side by side (stacked on narrow screens), the
// "reconnecting…" banner, toasts, the unread total in the tab title and desktop
// notifications. It wires the state's change events to the parts that show them.

import { h } from '../dom.js';
import { Sidebar } from './sidebar.js';
import { ChatPane } from './chat.js';
import { applySettings } from './theme.js';
import { Notifier } from './notify.js';

export function mountApp(root, { state, conn, signOut }) {
  const banner = h('div', { class: 'conn-banner', role: 'status', testid: 'conn-banner', hidden: true }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), h('span', { text: 'Reconnecting…' }));
  const toasts = h('div', { class: 'toasts', 'aria-live': 'polite', testid: 'toasts' });
  const shell = h('div', { class: 'app', testid: 'app', dataset: { view: 'list' } });
  const disposers = [];

  function toast(text, kind = 'info') {
    const t = h('div', { class: ['toast', kind], role: kind === 'error' ? 'alert' : 'status', testid: 'toast', text });
    toasts.append(t);
    setTimeout(() => t.classList.add('leaving'), 4500);
    setTimeout(() => t.remove(), 5000);
  }

  const ctx = { state, conn, toast, signOut, openConversation };
  const sidebar = new Sidebar(ctx);
  const chat = new ChatPane(ctx);
  const notifier = new Notifier(ctx);
  shell.append(sidebar.el, chat.el);
  root.replaceChildren(banner, shell, toasts);

  function openConversation(cid) {
    state.openConversation(cid).catch((e) => toast(e.message, 'error'));
  }

  function updateTitle() {
    const n = state.totalUnread();
    document.title = n ? `(${n}) webim` : 'webim';
  }

  // An open chat is a browser history entry, so the Back button (or gesture) of a phone
  // returns to the list instead of leaving the app. A reload starts at the list again.
  let fromHistory = false;
  let skipPop = false;
  if (history.state && history.state.webimChat) history.replaceState(null, '');
  const onPop = (e) => {
    if (skipPop) {
      skipPop = false;
      return;
    }
    const cid = e.state && e.state.webimChat;
    fromHistory = true;
    try {
      if (cid && state.convs.has(cid)) openConversation(cid);
      else if (state.openCid) state.closeConversation();
    } finally {
      fromHistory = false;
    }
  };
  window.addEventListener('popstate', onPop);
  disposers.push(() => window.removeEventListener('popstate', onPop));

  disposers.push(
    state.on('open', (cid) => {
      shell.dataset.view = cid ? 'chat' : 'list';
      if (fromHistory) return;
      const inChat = history.state && history.state.webimChat;
      if (cid && !inChat) history.pushState({ webimChat: cid }, '');
      else if (cid) history.replaceState({ webimChat: cid }, '');
      else if (inChat) {
        skipPop = true;
        history.back();
      }
    }),
    state.on('convs', updateTitle),
    state.on('settings', (s) => applySettings(s)),
    state.on('notice', (n) => toast(n.text)),
    state.on('incoming', ({ conv, message }) => notifier.message(conv, message)),
    state.on('friend-request', (r) => {
      if (state.me && r.to.id === state.me.id) toast(`${r.from.display_name} wants to be your friend.`);
    }),
  );
  applySettings(state.settings);
  updateTitle();

  // Banner only after a failed poll, so a normal start shows nothing.
  const ui = {
    setStatus(s) {
      banner.hidden = s !== 'reconnecting';
      shell.classList.toggle('offline', s === 'reconnecting');
    },
    toast,
    unmount() {
      disposers.forEach((d) => d());
      sidebar.destroy();
      chat.destroy();
      root.replaceChildren();
    },
  };
  return ui;
}
