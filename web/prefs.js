// Small per-browser preferences kept in localStorage: never the session token, only
// things that are harmless to keep — the last theme (so the page does not flash before
// /me answers), recently used emoji, whether desktop notifications were enabled, and the
// last receipt marks seen per conversation (the server's conversation list carries the
// reader's own read position but not the peer's, so marks would otherwise be lost on reload).

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
  marks: (userId) => read(`webim.marks.${userId}`, {}),
  setMarks: (userId, marks) => write(`webim.marks.${userId}`, marks),
};
