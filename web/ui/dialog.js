// Modal dialogs on the native <dialog> element: it traps focus, closes on Escape and puts
// focus back where it was, which keeps every dialog usable from the keyboard alone.

import { h, iconButton } from '../dom.js';

let seq = 0;

/**
 * Opens a modal. `body` is a node (or list); returns {el, close, error(text)}.
 * `onClose` runs once however the dialog ends.
 */
export function openDialog({ title, testid, body, footer, onClose, wide = false }) {
  const id = `dlg-title-${++seq}`;
  const errorBox = h('p', { class: 'form-error', role: 'alert', hidden: true, testid: 'dialog-error' });
  const dlg = h(
    'dialog',
    { class: ['dialog', wide && 'wide'], 'aria-labelledby': id, testid },
    h('header', { class: 'dialog-head' }, h('h2', { id, text: title }), iconButton('close', 'Close', { onclick: () => close(), testid: 'dialog-close' })),
    h('div', { class: 'dialog-body' }, body, errorBox),
    footer ? h('footer', { class: 'dialog-foot' }, footer) : null,
  );
  const opener = document.activeElement;
  let closed = false;
  function close() {
    if (closed) return;
    closed = true;
    if (dlg.open) dlg.close();
    dlg.remove();
    if (onClose) onClose();
    if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
  }
  dlg.addEventListener('close', close);
  dlg.addEventListener('cancel', (e) => {
    e.preventDefault();
    close();
  });
  // A click on the backdrop (the dialog element itself, outside its box) closes it.
  dlg.addEventListener('mousedown', (e) => {
    if (e.target === dlg) {
      const r = dlg.getBoundingClientRect();
      const inside = e.clientX >= r.left && e.clientX <= r.right && e.clientY >= r.top && e.clientY <= r.bottom;
      if (!inside) close();
    }
  });
  document.body.append(dlg);
  dlg.showModal();
  const first = dlg.querySelector('[autofocus], input:not([type=hidden]), textarea, select');
  if (first) first.focus();
  return {
    el: dlg,
    close,
    error(text) {
      errorBox.textContent = text || '';
      errorBox.hidden = !text;
    },
  };
}

/** Asks a yes/no question; resolves to true when confirmed. */
export function confirmDialog({ title, text, confirm = 'OK', danger = false, testid = 'confirm-dialog' }) {
  return new Promise((resolve) => {
    let answer = false;
    const yes = h('button', {
      type: 'button',
      class: ['btn', danger ? 'danger' : 'primary'],
      text: confirm,
      testid: 'confirm-yes',
      onclick: () => {
        answer = true;
        d.close();
      },
    });
    const d = openDialog({
      title,
      testid,
      body: h('p', { text }),
      footer: [h('button', { type: 'button', class: 'btn', text: 'Cancel', onclick: () => d.close() }), yes],
      onClose: () => resolve(answer),
    });
    yes.focus();
  });
}

/** Runs an async action from a dialog button: disables it meanwhile and shows the API's message on failure. */
export async function busy(button, dialog, fn) {
  button.disabled = true;
  if (dialog) dialog.error('');
  try {
    return await fn();
  } catch (e) {
    if (dialog) dialog.error(e.message);
    else throw e;
    return undefined;
  } finally {
    button.disabled = false;
  }
}
