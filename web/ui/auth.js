// The sign-in and sign-up screen. Every error the API gives is shown with its message; a
// successful sign-in leaves the session in the HttpOnly cookie the server sets.

import { h, icon } from '../dom.js';
import { api } from '../api.js';

function deviceName() {
  const ua = navigator.userAgent;
  const browser = /Firefox\//.test(ua) ? 'Firefox' : /Edg\//.test(ua) ? 'Edge' : /Chrom/.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : 'Browser';
  const os = /Android/.test(ua) ? 'Android' : /iPhone|iPad/.test(ua) ? 'iOS' : /Windows/.test(ua) ? 'Windows' : /Mac OS/.test(ua) ? 'macOS' : /Linux/.test(ua) ? 'Linux' : '';
  return `${browser}${os ? ` on ${os}` : ''}`;
}

export function renderAuth(root, { onSignedIn, notice = '' }) {
  let mode = 'signin';
  const error = h('p', { class: 'form-error', role: 'alert', testid: 'auth-error', hidden: true });
  const info = h('p', { class: 'form-info', role: 'status', text: notice, hidden: !notice });
  const username = h('input', { id: 'auth-username', name: 'username', autocomplete: 'username', required: true, testid: 'auth-username', autocapitalize: 'none', spellcheck: 'false' });
  const password = h('input', { id: 'auth-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true, testid: 'auth-password' });
  const display = h('input', { id: 'auth-display', name: 'display_name', autocomplete: 'nickname', testid: 'auth-display-name' });
  const displayRow = h('div', { class: 'field', hidden: true }, h('label', { for: 'auth-display', text: 'Display name (optional)' }), display);
  const submit = h('button', { type: 'submit', class: 'btn primary wide', testid: 'auth-submit', text: 'Sign in' });
  const hint = h('p', { class: 'field-hint', id: 'auth-hint', hidden: true, text: 'Username: 3–32 letters, digits or _. Password: at least 8 characters.' });
  const tabIn = h('button', { type: 'button', role: 'tab', class: 'seg', 'aria-selected': 'true', testid: 'auth-tab-signin', text: 'Sign in', onclick: () => setMode('signin') });
  const tabUp = h('button', { type: 'button', role: 'tab', class: 'seg', 'aria-selected': 'false', testid: 'auth-tab-signup', text: 'Create account', onclick: () => setMode('signup') });

  function setMode(m) {
    mode = m;
    const up = m === 'signup';
    tabIn.setAttribute('aria-selected', String(!up));
    tabUp.setAttribute('aria-selected', String(up));
    displayRow.hidden = !up;
    hint.hidden = !up;
    password.autocomplete = up ? 'new-password' : 'current-password';
    submit.textContent = up ? 'Create account' : 'Sign in';
    showError('');
    username.focus();
  }

  function showError(text) {
    error.textContent = text;
    error.hidden = !text;
  }

  const form = h(
    'form',
    {
      class: 'auth-form',
      testid: 'auth-form',
      novalidate: true,
      onsubmit: async (e) => {
        e.preventDefault();
        showError('');
        info.hidden = true;
        if (!username.value.trim() || !password.value) {
          showError('Enter a username and a password.');
          return;
        }
        submit.disabled = true;
        try {
          if (mode === 'signup') {
            const body = { username: username.value.trim(), password: password.value };
            if (display.value.trim()) body.display_name = display.value.trim();
            await api.post('/auth/register', body);
          }
          const ans = await api.post('/auth/login', { username: username.value.trim(), password: password.value, device_name: deviceName() });
          password.value = '';
          onSignedIn(ans.user);
        } catch (err) {
          showError(err.message);
          submit.disabled = false;
        }
      },
    },
    h('div', { class: 'segmented', role: 'tablist', 'aria-label': 'Sign in or create an account' }, tabIn, tabUp),
    info,
    h('div', { class: 'field' }, h('label', { for: 'auth-username', text: 'Username' }), username),
    h('div', { class: 'field' }, h('label', { for: 'auth-password', text: 'Password' }), password),
    displayRow,
    hint,
    error,
    submit,
  );

  root.replaceChildren(
    h(
      'main',
      { class: 'auth', testid: 'auth-screen' },
      h(
        'div',
        { class: 'auth-card' },
        h('div', { class: 'brand' }, h('span', { class: 'brand-mark' }, icon('chat')), h('h1', { text: 'webim' })),
        h('p', { class: 'tagline', text: 'Messages that arrive the moment they are sent.' }),
        form,
      ),
    ),
  );
  username.focus();
}
