// Small per-browser preferences kept in localStorage: never the session token, only
// things that are harmless to keep — the last theme (so the page does not flash before
// /me answers), recently used emoji, and whether desktop notifications were enabled.
// Receipt marks are not kept here: the server's conversation list carries the peer's read
// and delivered positions (`peer_read_seq`, `peer_delivered_seq`).

function read(key, fallback) {
  try {
    const v = localStorage.getItem(key);
    return v == null ? fallback : JSON.parse(v);
  } catch {
    return fallback;
  }
}

function write(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Storage full or disabled: these are conveniences only.
  }
}

export const prefs = {
  theme: () => read('webim.theme', null),
  setTheme: (t) => write('webim.theme', t),
  recentEmoji: () => read('webim.emoji.recent', []),
  setRecentEmoji: (list) => write('webim.emoji.recent', list),
  notify: () => read('webim.notify', false),
  setNotify: (on) => write('webim.notify', !!on),
};
