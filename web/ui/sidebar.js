// The sidebar: who I am and the app's actions (inbox, theme, sign out), the search box, and
// three tabs — conversations (last message, time, unread badge, most recent first), friends
// (presence dot) and groups.

import { h, icon, iconButton } from '../dom.js';
import { avatar } from './avatar.js';
import { listTime } from '../format.js';
import { coalesce } from './coalesce.js';
import { SearchPanel } from './search.js';
import { openInbox } from './inbox.js';
import { openThemeMenu } from './theme.js';
import { openProfile } from './profile.js';
import { openCreateGroup } from './groups.js';

/** Re-renders a list without losing keyboard focus on the item that had it. */
function keepFocus(list, key, render) {
  const a = document.activeElement;
  const was = a && list.contains(a) ? a.dataset[key] : null;
  render();
  if (was != null) {
    const again = [...list.querySelectorAll('button')].find((b) => b.dataset[key] === was);
    if (again) again.focus();
  }
}

const TABS = [
  { id: 'chats', label: 'Chats' },
  { id: 'friends', label: 'Friends' },
  { id: 'groups', label: 'Groups' },
];

export class Sidebar {
  constructor(ctx) {
    this.ctx = ctx;
    const { state } = ctx;
    this.state = state;
    this.tab = 'chats';

    this.meAvatar = h('span', { class: 'me-avatar' });
    this.meName = h('span', { class: 'me-name', testid: 'me-name' });
    this.meButton = h('button', { type: 'button', class: 'me-btn', testid: 'open-profile', onclick: () => openProfile(ctx) }, this.meAvatar, h('span', { class: 'me-text' }, this.meName, h('span', { class: 'me-sub', text: 'Profile & settings' })));
    this.inboxBadge = h('span', { class: 'badge dot-badge', testid: 'inbox-badge', hidden: true });
    this.inboxButton = h('button', { type: 'button', class: 'icon-btn', testid: 'open-inbox', 'aria-label': 'Requests', title: 'Requests', onclick: () => openInbox(ctx) }, icon('bell'), this.inboxBadge);
    const themeButton = iconButton('palette', 'Theme', { testid: 'open-theme', 'aria-haspopup': 'menu', 'aria-expanded': 'false' });
    themeButton.addEventListener('click', () => openThemeMenu(themeButton, (m) => ctx.toast(m, 'error')));
    const signOutButton = iconButton('logout', 'Sign out', { testid: 'sign-out', onclick: () => ctx.signOut() });

    this.search = new SearchPanel(ctx, (active) => this.showSearch(active));

    this.tabButtons = TABS.map((t) =>
      h('button', {
        type: 'button',
        role: 'tab',
        id: `tab-${t.id}`,
        class: 'tab',
        testid: `tab-${t.id}`,
        'aria-controls': `panel-${t.id}`,
        onclick: () => this.setTab(t.id),
        onkeydown: (e) => this.tabKey(e),
      }, h('span', { text: t.label }), h('span', { class: 'badge tab-badge', hidden: true })),
    );
    this.lists = {
      chats: h('ul', { class: 'item-list', testid: 'conv-list', 'aria-label': 'Conversations' }),
      friends: h('ul', { class: 'item-list', testid: 'friend-list', 'aria-label': 'Friends' }),
      groups: h('ul', { class: 'item-list', testid: 'group-list', 'aria-label': 'Groups' }),
    };
    this.panels = {};
    for (const t of TABS) {
      const extra = t.id === 'groups'
        ? h('div', { class: 'panel-actions' }, h('button', { type: 'button', class: 'btn subtle wide', testid: 'new-group', onclick: () => openCreateGroup(ctx) }, icon('plus'), h('span', { text: 'New group' })))
        : null;
      this.panels[t.id] = h('div', { class: 'panel', role: 'tabpanel', id: `panel-${t.id}`, 'aria-labelledby': `tab-${t.id}`, hidden: true }, extra, this.lists[t.id]);
    }
    this.tablist = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Lists' }, this.tabButtons);
    this.body = h('div', { class: 'side-body' }, Object.values(this.panels), this.search.results);

    this.el = h(
      'aside',
      { class: 'sidebar', 'aria-label': 'Conversations and contacts' },
      h('header', { class: 'side-head' }, this.meButton, h('div', { class: 'side-actions' }, this.inboxButton, themeButton, signOutButton)),
      this.search.box,
      this.tablist,
      this.body,
    );

    const rChats = coalesce(() => this.renderChats());
    const rFriends = coalesce(() => this.renderFriends());
    const rGroups = coalesce(() => this.renderGroups());
    const rMe = coalesce(() => this.renderMe());
    const rReq = coalesce(() => this.renderRequests());
    this.off = [
      state.on('convs', rChats),
      state.on('open', rChats),
      state.on('friends', rFriends),
      state.on('friends', rChats),
      state.on('groups', rGroups),
      state.on('groups', rChats),
      state.on('me', rMe),
      state.on('requests', rReq),
    ];
    this.setTab('chats');
    this.renderMe();
    this.renderChats();
    this.renderFriends();
    this.renderGroups();
    this.renderRequests();
  }

  destroy() {
    this.off.forEach((f) => f());
    this.search.destroy();
  }

  tabKey(e) {
    const i = TABS.findIndex((t) => t.id === this.tab);
    let next = null;
    if (e.key === 'ArrowRight') next = (i + 1) % TABS.length;
    else if (e.key === 'ArrowLeft') next = (i - 1 + TABS.length) % TABS.length;
    else if (e.key === 'Home') next = 0;
    else if (e.key === 'End') next = TABS.length - 1;
    if (next == null) return;
    e.preventDefault();
    this.setTab(TABS[next].id);
    this.tabButtons[next].focus();
  }

  setTab(id) {
    this.tab = id;
    TABS.forEach((t, i) => {
      const on = t.id === id;
      this.tabButtons[i].setAttribute('aria-selected', String(on));
      this.tabButtons[i].tabIndex = on ? 0 : -1;
      this.panels[t.id].hidden = !on || this.searching;
    });
  }

  showSearch(active) {
    this.searching = active;
    this.tablist.hidden = active;
    this.setTab(this.tab);
  }

  renderMe() {
    const me = this.state.me;
    if (!me) return;
    this.meAvatar.replaceChildren(avatar(me.avatar_url, { size: 'md' }));
    this.meName.textContent = me.display_name;
    this.meButton.setAttribute('aria-label', `Profile and settings of ${me.display_name}`);
  }

  renderRequests() {
    const n = this.state.pendingRequestCount();
    this.inboxBadge.hidden = n === 0;
    this.inboxBadge.textContent = n > 99 ? '99+' : String(n);
    this.inboxButton.setAttribute('aria-label', n ? `Requests, ${n} waiting` : 'Requests');
  }

  preview(conv) {
    const m = conv.last_message;
    if (!m) return { text: conv.kind === 'group' ? 'Group created — say hello' : 'You are now friends — say hello', muted: true };
    if (m.recalled) return { text: 'Message recalled', muted: true };
    const me = this.state.me;
    let who = '';
    if (me && m.sender_id === me.id) who = 'You: ';
    else if (conv.kind === 'group') who = `${this.state.userName(m.sender_id)}: `;
    return { text: who + m.body.replace(/\s+/g, ' '), muted: false };
  }

  renderChats() {
    const { state } = this;
    const items = state.sortedConvs().map((conv) => {
      const unread = state.unread(conv);
      const title = state.convTitle(conv);
      const pic = conv.kind === 'group' ? (conv.group && conv.group.avatar_url) : conv.peer && conv.peer.avatar_url;
      const online = conv.kind === 'direct' && conv.peer ? !!conv.peer.online : null;
      const p = this.preview(conv);
      const active = state.openCid === conv.id;
      return h(
        'li',
        null,
        h(
          'button',
          {
            type: 'button',
            class: ['item', 'conv-item', active && 'active', unread && 'has-unread'],
            testid: 'conv-item',
            dataset: { cid: conv.id, title, kind: conv.kind },
            'aria-current': active ? 'true' : null,
            onclick: () => this.ctx.openConversation(conv.id),
          },
          avatar(pic, { size: 'md', online }),
          h(
            'span',
            { class: 'item-main' },
            h('span', { class: 'item-top' }, h('span', { class: 'item-title', text: title }), h('time', { class: 'item-time', text: listTime(state.lastActivity(conv)) })),
            h(
              'span',
              { class: 'item-bottom' },
              h('span', { class: ['item-sub', p.muted && 'muted'], testid: 'conv-preview', text: p.text }),
              unread ? h('span', { class: 'badge', testid: 'unread-badge', text: unread > 999 ? '999+' : String(unread) }) : null,
              unread ? h('span', { class: 'sr-only', text: ' unread' }) : null,
            ),
          ),
        ),
      );
    });
    if (!items.length) items.push(h('li', { class: 'empty' }, h('p', { text: 'No conversations yet.' }), h('p', { class: 'muted', text: 'Search for people or groups above to get started.' })));
    keepFocus(this.lists.chats, 'cid', () => this.lists.chats.replaceChildren(...items));
    const total = state.totalUnread();
    const badge = this.tabButtons[0].querySelector('.tab-badge');
    badge.hidden = !total;
    badge.textContent = String(total);
  }

  renderFriends() {
    const { state } = this;
    const friends = [...state.friends.values()].sort((a, b) => Number(b.online) - Number(a.online) || a.display_name.localeCompare(b.display_name));
    const items = friends.map((u) =>
      h(
        'li',
        null,
        h(
          'button',
          {
            type: 'button',
            class: 'item friend-item',
            testid: 'friend-item',
            dataset: { userId: u.id, name: u.display_name },
            'aria-label': `${u.display_name}, ${u.online ? 'online' : 'offline'}. Open chat`,
            onclick: () => {
              const conv = state.convWithPeer(u.id);
              if (conv) this.ctx.openConversation(conv.id);
              else this.ctx.toast('The conversation is still being set up; try again in a moment.');
            },
          },
          avatar(u.avatar_url, { size: 'md', online: !!u.online }),
          h('span', { class: 'item-main' }, h('span', { class: 'item-title', text: u.display_name }), h('span', { class: 'item-sub muted', text: `@${u.username} · ${u.online ? 'online' : 'offline'}` })),
        ),
      ),
    );
    if (!items.length) items.push(h('li', { class: 'empty' }, h('p', { text: 'No friends yet.' }), h('p', { class: 'muted', text: 'Find people with the search box and add them.' })));
    keepFocus(this.lists.friends, 'userId', () => this.lists.friends.replaceChildren(...items));
  }

  renderGroups() {
    const { state } = this;
    const groups = [...state.groups.values()].sort((a, b) => a.name.localeCompare(b.name));
    const items = groups.map((g) =>
      h(
        'li',
        null,
        h(
          'button',
          {
            type: 'button',
            class: 'item group-item',
            testid: 'group-item',
            dataset: { groupId: g.id, name: g.name },
            'aria-label': `${g.name}, ${g.member_count} members. Open chat`,
            onclick: () => {
              const conv = state.convOfGroup(g.id);
              if (conv) this.ctx.openConversation(conv.id);
              else this.ctx.toast('The group chat is still being set up; try again in a moment.');
            },
          },
          avatar(g.avatar_url, { size: 'md' }),
          h('span', { class: 'item-main' }, h('span', { class: 'item-title', text: g.name }), h('span', { class: 'item-sub muted', text: `${g.member_count} member${g.member_count === 1 ? '' : 's'}${this.state.me && g.owner_id === this.state.me.id ? ' · owner' : ''}` })),
        ),
      ),
    );
    if (!items.length) items.push(h('li', { class: 'empty' }, h('p', { text: 'No groups yet.' }), h('p', { class: 'muted', text: 'Create one, or find groups to join with the search box.' })));
    keepFocus(this.lists.groups, 'groupId', () => this.lists.groups.replaceChildren(...items));
  }
}
