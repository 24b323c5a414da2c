// Formats times for people: clock times in bubbles, short dates in the list, day headings
// between messages. All in the browser's locale and time zone.

const clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const weekday = new Intl.DateTimeFormat(undefined, { weekday: 'short' });
const shortDate = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short' });
const longDate = new Intl.DateTimeFormat(undefined, { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' });
const full = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' });

export function dayKey(ts) {
  const d = new Date(ts);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

function startOfDay(ts) {
  const d = new Date(ts);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

const DAY = 86400000;

export function timeOf(ts) {
  return clock.format(ts);
}

export function fullTime(ts) {
  return full.format(ts);
}

/** "12:30" today, "Tue" this week, "3 Mar" before. */
export function listTime(ts, now = Date.now()) {
  if (!ts) return '';
  const days = Math.round((startOfDay(now) - startOfDay(ts)) / DAY);
  if (days <= 0) return clock.format(ts);
  if (days < 7) return weekday.format(ts);
  return shortDate.format(ts);
}

/** "Today", "Yesterday", or the full date. */
export function dayLabel(ts, now = Date.now()) {
  const days = Math.round((startOfDay(now) - startOfDay(ts)) / DAY);
  if (days === 0) return 'Today';
  if (days === 1) return 'Yesterday';
  return longDate.format(ts);
}
