// The inbox: friend requests to me (accept or decline), my own pending requests, and join
// requests for the groups I own or administer. It stays current while open.

import { h } from '../dom.js';
import { api } from '../api.js';
import { avatar } from './avatar.js';
import { openDialog } from './dialog.js';
import { listTime } from '../format.js';

export function openInbox(ctx) {
  const { state } = ctx;
  const body = h('div', { class: 'inbox', testid: 'inbox' });
  let dlg = null;

  async function act(button, fn) {
    button.disabled = true;
    dlg.error('');
    try {
      await fn();
    } catch (e) {
      dlg.error(e.message);
      button.disabled = false;
    }
  }

  function row(user, sub, actions, testid, data) {
    return h('li', { class: 'item result', testid, dataset: data },
      avatar(user.avatar_url, { size: 'sm' }),
      h('span', { class: 'item-main' }, h('span', { class: 'item-title', text: user.display_name }), h('span', { class: 'item-sub muted', text: sub })),
      h('span', { class: 'row-actions' }, actions));
  }

  function render() {
    const sections = [];
    const incoming = state.incoming.map((r) =>
      row(r.from, r.note ? `“${r.note}”` : `@${r.from.username} · ${listTime(r.ts)}`, [
        h('button', { type: 'button', class: 'btn small primary', testid: 'accept-friend', text: 'Accept', 'aria-label': `Accept ${r.from.display_name}`, onclick: (e) => act(e.currentTarget, async () => {
          const ans = await api.post(`/friend-requests/${r.id}/accept`);
          state.applyEvents([{ type: 'friend.accepted', user: ans.user, conversation_id: ans.conversation_id }]);
          ctx.toast(`You and ${r.from.display_name} are now friends.`);
        }) }),
        h('button', { type: 'button', class: 'btn small', testid: 'decline-friend', text: 'Decline', 'aria-label': `Decline ${r.from.display_name}`, onclick: (e) => act(e.currentTarget, async () => {
          await api.post(`/friend-requests/${r.id}/decline`);
          state.incoming = state.incoming.filter((x) => x.id !== r.id);
          state.emit('requests');
        }) }),
      ], 'friend-request', { requestId: r.id, username: r.from.username }),
    );
    sections.push(h('section', null, h('h3', { class: 'section-title', text: 'Friend requests' }),
      h('ul', { class: 'item-list' }, incoming.length ? incoming : h('li', { class: 'empty small muted', text: 'No one is waiting for an answer.' }))));

    const joins = [];
    for (const [gid, list] of state.joinRequests) {
      const g = state.groups.get(gid);
      if (!g) continue;
      for (const r of list) {
        joins.push(row(r.user, `wants to join ${g.name}`, [
          h('button', { type: 'button', class: 'btn small primary', testid: 'accept-join', text: 'Accept', 'aria-label': `Let ${r.user.display_name} join ${g.name}`, onclick: (e) => act(e.currentTarget, async () => {
            await api.post(`/groups/${gid}/requests/${r.user.id}/accept`);
            state.joinRequests.set(gid, (state.joinRequests.get(gid) || []).filter((x) => x.user.id !== r.user.id));
            state.emit('requests');
          }) }),
          h('button', { type: 'button', class: 'btn small', testid: 'decline-join', text: 'Decline', 'aria-label': `Decline ${r.user.display_name}`, onclick: (e) => act(e.currentTarget, async () => {
            await api.post(`/groups/${gid}/requests/${r.user.id}/decline`);
            state.joinRequests.set(gid, (state.joinRequests.get(gid) || []).filter((x) => x.user.id !== r.user.id));
            state.emit('requests');
          }) }),
        ], 'join-request', { groupId: gid, userId: r.user.id }));
      }
    }
    sections.push(h('section', null, h('h3', { class: 'section-title', text: 'Requests to join your groups' }),
      h('ul', { class: 'item-list' }, joins.length ? joins : h('li', { class: 'empty small muted', text: 'No pending join requests.' }))));

    if (state.outgoing.length) {
      sections.push(h('section', null, h('h3', { class: 'section-title', text: 'Sent by you' }),
        h('ul', { class: 'item-list' }, state.outgoing.map((r) => row(r.to, `@${r.to.username} · waiting for an answer`, [], 'outgoing-request', { requestId: r.id })))));
    }
    body.replaceChildren(...sections);
  }

  const off = state.on('requests', render);
  render();
  dlg = openDialog({ title: 'Requests', testid: 'inbox-dialog', body, onClose: off });
  state.loadJoinRequests();
}
