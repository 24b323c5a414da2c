// Desktop notifications for new messages while the page is hidden. Off until the user
// turns them on (which asks the browser's permission); only the tab that polls raises them,
// and only when no tab of the app is visible, so a message never pops up twice.

import { prefs } from '../prefs.js';

export function notificationsSupported() {
  return 'Notification' in window;
}

export function notificationsOn() {
  return notificationsSupported() && prefs.notify() && Notification.permission === 'granted';
}

/** Turns notifications on (asking permission) or off; resolves to the resulting state. */
export async function setNotifications(on) {
  if (!on || !notificationsSupported()) {
    prefs.setNotify(false);
    return false;
  }
  const perm = Notification.permission === 'default' ? await Notification.requestPermission() : Notification.permission;
  prefs.setNotify(perm === 'granted');
  return perm === 'granted';
}

export class Notifier {
  constructor({ state, conn, openConversation }) {
    Object.assign(this, { state, conn, openConversation });
  }

  message(conv, message) {
    if (!notificationsOn() || !this.conn.shouldNotify()) return;
    const who = this.state.userName(message.sender_id);
    const title = conv.kind === 'group' ? `${who} in ${this.state.convTitle(conv)}` : who;
    try {
      const n = new Notification(title, {
        body: message.body.length > 160 ? `${message.body.slice(0, 157)}…` : message.body,
        tag: `webim-${conv.id}`,
        icon: this.state.avatarOf(message.sender_id),
      });
      n.onclick = () => {
        window.focus();
        this.openConversation(conv.id);
        n.close();
      };
    } catch {
      // Some platforms only allow notifications from a service worker; nothing to do.
    }
  }
}
