// Avatars: the user's or group's picture (uploaded, or the server's generated initials),
// with an optional presence dot. The alt text is empty because a name is always next to it.

import { h } from '../dom.js';

export function avatar(url, { size = 'md', online = null, label = '' } = {}) {
  const img = h('img', { class: 'avatar-img', src: url || '', alt: label, loading: 'lazy', decoding: 'async', draggable: 'false' });
  const wrap = h('span', { class: ['avatar', `avatar-${size}`] }, img);
  if (online !== null) {
    wrap.append(
      h('span', {
        class: ['presence', online ? 'on' : 'off'],
        testid: 'presence',
        dataset: { online: online ? 'true' : 'false' },
        role: 'img',
        'aria-label': online ? 'online' : 'offline',
      }),
    );
  }
  return wrap;
}
