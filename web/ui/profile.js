// Profile and settings: display name, picture (cropped and previewed before upload), theme
// and desktop notifications.

import { h, icon } from '../dom.js';
import { api } from '../api.js';
import { avatar } from './avatar.js';
import { openDialog } from './dialog.js';
import { openCropper } from './cropper.js';
import { THEMES, chooseTheme, swatch } from './theme.js';
import { notificationsSupported, notificationsOn, setNotifications } from './notify.js';

export function openProfile(ctx) {
  const { state } = ctx;
  const me = state.me;
  const pic = h('span', { class: 'profile-pic', testid: 'profile-avatar' });
  const renderPic = () => pic.replaceChildren(avatar(state.me.avatar_url, { size: 'xl' }));
  renderPic();
  const change = h('button', { type: 'button', class: 'btn small', testid: 'change-avatar' }, icon('camera'), h('span', { text: 'Change picture' }));
  change.addEventListener('click', () =>
    openCropper({
      title: 'New profile picture',
      onUpload: async (blob) => {
        const { user } = await api.upload('/me/avatar', blob);
        state.applyEvents([{ type: 'profile.updated', user }]);
        ctx.toast('Your picture was updated.');
      },
    }),
  );

  const name = h('input', { id: 'profile-name', value: me.display_name, maxlength: '64', autocomplete: 'nickname', testid: 'profile-name' });
  const saveName = h('button', { type: 'submit', class: 'btn primary', testid: 'save-name', text: 'Save' });
  const nameForm = h('form', { class: 'inline-form', onsubmit: async (e) => {
    e.preventDefault();
    saveName.disabled = true;
    d.error('');
    try {
      const { user } = await api.patch('/me', { display_name: name.value });
      state.applyEvents([{ type: 'profile.updated', user }]);
      ctx.toast('Your name was saved.');
    } catch (err) {
      d.error(err.message);
    } finally {
      saveName.disabled = false;
    }
  } }, h('label', { for: 'profile-name', text: 'Display name' }), h('div', { class: 'row' }, name, saveName));

  const current = document.documentElement.dataset.theme;
  const themes = h('div', { class: 'theme-grid', role: 'radiogroup', 'aria-label': 'Theme' },
    THEMES.map((t) => {
      const input = h('input', { type: 'radio', name: 'theme', value: t.id, checked: t.id === current, testid: `theme-radio-${t.id}`, class: 'sr-only' });
      input.addEventListener('change', async () => {
        d.error('');
        try {
          await chooseTheme(t.id);
        } catch (err) {
          d.error(err.message);
        }
      });
      return h('label', { class: 'theme-card' }, input, swatch(t.id), h('span', { class: 'theme-name', text: t.name }), h('span', { class: 'muted small', text: t.hint }));
    }));

  const notify = h('input', { type: 'checkbox', id: 'notify-toggle', checked: notificationsOn(), disabled: !notificationsSupported(), testid: 'notify-toggle' });
  const notifyNote = h('p', { class: 'muted small' });
  const explainNotify = () => {
    if (!notificationsSupported()) notifyNote.textContent = 'This browser does not support desktop notifications.';
    else if (Notification.permission === 'denied') notifyNote.textContent = 'Notifications are blocked for this site in the browser settings.';
    else notifyNote.textContent = 'Shown for new messages while no webim tab is visible.';
  };
  explainNotify();
  notify.addEventListener('change', async () => {
    notify.checked = await setNotifications(notify.checked);
    explainNotify();
  });

  const d = openDialog({
    title: 'Profile & settings',
    testid: 'profile-dialog',
    wide: true,
    body: h('div', { class: 'profile' },
      h('section', { class: 'profile-card' }, pic, change, h('p', { class: 'muted', text: `Signed in as @${me.username}` })),
      h('section', null, nameForm),
      h('section', null, h('h3', { class: 'section-title', text: 'Theme' }), themes),
      h('section', null, h('h3', { class: 'section-title', text: 'Notifications' }),
        h('label', { class: 'check-row', for: 'notify-toggle' }, notify, h('span', { text: 'Desktop notifications' })), notifyNote)),
    onClose: () => off.forEach((f) => f()),
  });
  const off = [
    state.on('me', renderPic),
    state.on('settings', () => {
      const now = document.documentElement.dataset.theme;
      themes.querySelectorAll('input').forEach((i) => { i.checked = i.value === now; });
    }),
  ];
}
