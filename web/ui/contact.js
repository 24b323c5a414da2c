// Contact info for a direct chat: the friend's picture, names and presence, and removing
// the friendship.

import { h } from '../dom.js';
import { api } from '../api.js';
import { avatar } from './avatar.js';
import { openDialog, confirmDialog } from './dialog.js';

export function openContact(ctx, conv) {
  const { state } = ctx;
  const u = conv.peer;
  if (!u) return;
  const isFriend = state.friends.has(u.id);
  const remove = h('button', { type: 'button', class: 'btn danger', testid: 'remove-friend', text: 'Remove friend', disabled: !isFriend });
  const d = openDialog({
    title: u.display_name,
    testid: 'contact-dialog',
    body: h('div', { class: 'profile-card' },
      avatar(u.avatar_url, { size: 'xl', online: !!u.online }),
      h('p', { class: 'profile-name', text: u.display_name }),
      h('p', { class: 'muted', text: `@${u.username} · ${u.online ? 'online' : 'offline'}` }),
      isFriend ? null : h('p', { class: 'muted', text: 'You are no longer friends; messages cannot be sent.' })),
    footer: [remove],
  });
  remove.addEventListener('click', async () => {
    const ok = await confirmDialog({ title: 'Remove friend?', text: `${u.display_name} will no longer be able to message you, nor you them.`, confirm: 'Remove', danger: true });
    if (!ok) return;
    try {
      await api.del(`/friends/${u.id}`);
      state.applyEvents([{ type: 'friend.removed', user_id: u.id }]);
      d.close();
      ctx.toast(`${u.display_name} is no longer your friend.`);
    } catch (e) {
      d.error(e.message);
    }
  });
}
