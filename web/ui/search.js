// The search box: finds people and groups as you type, with "add friend" and "join group"
// right in the results. Results show what is already true (friend, requested, member) so
// a button is offered only when it can do something.

import { h, icon } from '../dom.js';
import { api } from '../api.js';
import { avatar } from './avatar.js';

export class SearchPanel {
  constructor(ctx, onActive) {
    this.ctx = ctx;
    this.state = ctx.state;
    this.onActive = onActive;
    this.seq = 0;
    this.requested = new Set(); // group ids this browser asked to join (no route lists them)
    this.input = h('input', {
      type: 'search',
      class: 'search-input',
      placeholder: 'Search people and groups',
      'aria-label': 'Search people and groups',
      testid: 'search-input',
      autocomplete: 'off',
      spellcheck: 'false',
      oninput: () => this.schedule(),
      onkeydown: (e) => {
        if (e.key === 'Escape' && this.input.value) {
          e.preventDefault();
          this.input.value = '';
          this.schedule();
        }
      },
    });
    this.box = h('div', { class: 'search', role: 'search' }, icon('search', 'search-icon'), this.input);
    this.status = h('p', { class: 'search-status muted', role: 'status' });
    this.people = h('ul', { class: 'item-list', 'aria-label': 'People', testid: 'search-users' });
    this.groupList = h('ul', { class: 'item-list', 'aria-label': 'Groups', testid: 'search-groups' });
    this.results = h(
      'div',
      { class: 'panel search-results', testid: 'search-results', hidden: true },
      this.status,
      h('h3', { class: 'section-title', text: 'People' }),
      this.people,
      h('h3', { class: 'section-title', text: 'Groups' }),
      this.groupList,
    );
    const rerender = () => this.last && this.render(this.last);
    this.off = [this.state.on('friends', rerender), this.state.on('requests', rerender), this.state.on('groups', rerender)];
  }

  destroy() {
    this.off.forEach((f) => f());
    clearTimeout(this.timer);
  }

  schedule() {
    clearTimeout(this.timer);
    const q = this.input.value.trim();
    if (!q) {
      this.last = null;
      this.results.hidden = true;
      this.onActive(false);
      return;
    }
    this.results.hidden = false;
    this.onActive(true);
    this.timer = setTimeout(() => this.run(q), 220);
  }

  async run(q) {
    const my = ++this.seq;
    this.status.textContent = 'Searching…';
    try {
      const qs = encodeURIComponent(q);
      const [u, g] = await Promise.all([api.get(`/users?q=${qs}`), api.get(`/groups?q=${qs}`)]);
      if (my !== this.seq) return;
      g.groups.forEach((x) => this.state.knownGroups.set(x.id, x));
      this.last = { users: u.users, groups: g.groups };
      this.render(this.last);
    } catch (e) {
      if (my === this.seq) this.status.textContent = e.message;
    }
  }

  userAction(u) {
    const { state } = this;
    if (state.me && u.id === state.me.id) return h('span', { class: 'tag', text: 'You' });
    if (state.friends.has(u.id)) {
      return h('button', { type: 'button', class: 'btn small', text: 'Message', 'aria-label': `Message ${u.display_name}`, onclick: () => {
        const conv = state.convWithPeer(u.id);
        if (conv) {
          this.clear();
          this.ctx.openConversation(conv.id);
        }
      } });
    }
    if (state.outgoing.some((r) => r.to.id === u.id)) return h('span', { class: 'tag', testid: 'requested', text: 'Requested' });
    const incoming = state.incoming.find((r) => r.from.id === u.id);
    if (incoming) {
      return h('button', { type: 'button', class: 'btn small primary', text: 'Accept', 'aria-label': `Accept friend request from ${u.display_name}`, onclick: (e) => this.act(e.currentTarget, async () => {
        await api.post(`/friend-requests/${incoming.id}/accept`);
      }) });
    }
    return h('button', { type: 'button', class: 'btn small primary', testid: 'add-friend', 'aria-label': `Add ${u.display_name} as a friend`, onclick: (e) => this.act(e.currentTarget, async () => {
      const { request } = await api.post('/friend-requests', { user_id: u.id });
      if (!state.outgoing.some((r) => r.id === request.id)) state.outgoing.push(request);
      state.emit('requests');
      this.ctx.toast(`Friend request sent to ${u.display_name}.`);
    }) }, icon('userPlus'), h('span', { text: 'Add friend' }));
  }

  groupAction(g) {
    const { state } = this;
    if (state.groups.has(g.id)) {
      return h('button', { type: 'button', class: 'btn small', text: 'Open', 'aria-label': `Open ${g.name}`, onclick: () => {
        const conv = state.convOfGroup(g.id);
        if (conv) {
          this.clear();
          this.ctx.openConversation(conv.id);
        }
      } });
    }
    if (this.requested.has(g.id)) return h('span', { class: 'tag', text: 'Requested' });
    return h('button', { type: 'button', class: 'btn small primary', testid: 'join-group', 'aria-label': `Join ${g.name}`, onclick: (e) => this.act(e.currentTarget, async () => {
      const ans = await api.post(`/groups/${g.id}/join`);
      if (ans.status === 'requested') {
        this.requested.add(g.id);
        this.ctx.toast(`Asked to join “${g.name}”. An admin will answer.`);
      } else {
        state.upsertGroup(ans.group);
        state.emit('groups');
        this.ctx.toast(`You joined “${g.name}”.`);
      }
      if (this.last) this.render(this.last);
    }) }, h('span', { text: g.join_policy === 'approval' ? 'Ask to join' : 'Join' }));
  }

  async act(button, fn) {
    button.disabled = true;
    try {
      await fn();
    } catch (e) {
      this.ctx.toast(e.message, 'error');
      button.disabled = false;
    }
  }

  clear() {
    this.input.value = '';
    this.schedule();
  }

  render({ users, groups }) {
    this.status.textContent = users.length || groups.length ? '' : 'Nobody and nothing found.';
    this.people.replaceChildren(
      ...(users.length ? users.map((u) => h('li', { class: 'item result', testid: 'user-result', dataset: { userId: u.id, username: u.username } },
        avatar(u.avatar_url, { size: 'sm' }),
        h('span', { class: 'item-main' }, h('span', { class: 'item-title', text: u.display_name }), h('span', { class: 'item-sub muted', text: `@${u.username}` })),
        this.userAction(u),
      )) : [h('li', { class: 'empty small muted', text: 'No people match.' })]),
    );
    this.groupList.replaceChildren(
      ...(groups.length ? groups.map((g) => h('li', { class: 'item result', testid: 'group-result', dataset: { groupId: g.id, name: g.name } },
        avatar(g.avatar_url, { size: 'sm' }),
        h('span', { class: 'item-main' }, h('span', { class: 'item-title', text: g.name }), h('span', { class: 'item-sub muted', text: `${g.member_count} member${g.member_count === 1 ? '' : 's'} · ${g.join_policy === 'approval' ? 'approval needed' : 'open'}` })),
        this.groupAction(g),
      )) : [h('li', { class: 'empty small muted', text: 'No groups match.' })]),
    );
  }
}
