// The message connection: one long poll per browser, not per tab. Tabs elect a leader with
// the Web Locks API (a closed or crashed leader drops its lock, so a waiting tab takes over
// by itself); only the leader polls GET /api/v1/events, and it shares every answer with the
// other tabs over a BroadcastChannel. Two tabs polling with the same cookie would be the same
// device and would keep cancelling each other's held request, which is why there is one loop.
//
// Cursors are opaque: tabs never compare them, they only check that each answer continues
// from the cursor they last saw; when it does not, the tab reconciles from the API. A tab
// starts listening before it loads its state, so every answer shared after that point
// reaches it and everything before is in what it loaded: its first answer needs no check.

import { api, seg, ApiError } from './api.js';

const POLL_TIMEOUT_S = 60;
// A held poll answers within the timeout; past this the network dropped it silently.
const CLIENT_TIMEOUT_MS = (POLL_TIMEOUT_S + 25) * 1000;
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30000;

/** Exponential backoff with jitter (half fixed, half random), capped at 30 s. */
export function backoffDelay(failures, retryAfterSeconds = null) {
  const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, failures - 1));
  const delay = cap / 2 + Math.random() * (cap / 2);
  const floor = Number(retryAfterSeconds) > 0 ? Number(retryAfterSeconds) * 1000 : 0;
  return Math.min(BACKOFF_MAX_MS, Math.max(delay, floor));
}

export class Connection {
  /**
   * @param {object} o
   * @param {number} o.userId        scopes the lock and channel to one account
   * @param {(events: object[]) => void} o.apply        applies a batch to this tab's state
   * @param {() => Promise<string>} o.resync            reloads everything; resolves to a new cursor
   * @param {() => void} o.reconcile                    catch up after a discontinuity
   * @param {() => void} o.unauthorized                 the session is gone
   * @param {(status: string) => void} o.status         'connecting' | 'online' | 'reconnecting'
   */
  constructor(o) {
    this.userId = o.userId;
    this.cursor = null;
    this.cb = o;
    this.buffer = [];
    this.listening = false;
    this.seenBatch = false;
    this.tab = Math.random().toString(36).slice(2);
    this.running = false;
    this.isLeader = false;
    this.state = 'connecting';
    this.visible = new Map();
    this.wakeSleep = null;
    this.needResync = false;
  }

  /** Opens the channel before the state is loaded; what arrives meanwhile waits for start(). */
  listen() {
    if (this.channel) return;
    this.channel = new BroadcastChannel(`webim-events-${this.userId}`);
    this.channel.onmessage = (e) => {
      if (this.running) this.onMessage(e.data);
      else if (e.data && e.data.type === 'batch') this.buffer.push(e.data);
    };
  }

  /** Starts with the cursor of the loaded state (GET /conversations). */
  start(cursor) {
    this.listen();
    this.cursor = cursor;
    this.running = true;
    const early = this.buffer;
    this.buffer = [];
    for (const msg of early) this.onMessage(msg);
    this.onOnline = () => this.wakeUp();
    this.onVisibility = () => {
      this.post({ type: 'visibility', tab: this.tab, visible: !document.hidden });
      // Someone is looking: retry now rather than at the end of a long backoff.
      if (!document.hidden) this.wakeUp();
    };
    window.addEventListener('online', this.onOnline);
    document.addEventListener('visibilitychange', this.onVisibility);
    if (navigator.locks && navigator.locks.request) {
      this.lockAbort = new AbortController();
      navigator.locks
        .request(`webim-leader-${this.userId}`, { signal: this.lockAbort.signal }, () => (this.running ? this.lead() : null))
        .catch(() => {
          // Aborted while waiting: this tab stopped before it ever led.
        });
      // Ask a sitting leader for the connection's state, so the banner is right at once.
      this.post({ type: 'hello' });
    } else {
      // No Web Locks (very old browser): every tab polls for itself.
      this.lead();
    }
  }

  stop() {
    this.running = false;
    if (this.lockAbort) this.lockAbort.abort();
    if (this.pollAbort) this.pollAbort.abort();
    this.wakeUp();
    window.removeEventListener('online', this.onOnline);
    document.removeEventListener('visibilitychange', this.onVisibility);
    if (this.channel) this.channel.close();
  }

  /** Whether this tab should raise desktop notifications: the leader, when no tab is visible. */
  shouldNotify() {
    if (!document.hidden) return false;
    if (!this.isLeader) return false;
    for (const [tab, vis] of this.visible) if (tab !== this.tab && vis) return false;
    return true;
  }

  post(msg) {
    try {
      if (this.channel) this.channel.postMessage(msg);
    } catch {
      // Channel closed during shutdown.
    }
  }

  setStatus(s, share = true) {
    if (this.state === s) return;
    this.state = s;
    this.cb.status(s);
    if (share && this.isLeader) this.post({ type: 'status', status: s });
  }

  onMessage(msg) {
    if (!this.running || !msg) return;
    switch (msg.type) {
      case 'batch': {
        if (this.isLeader) return;
        const continuous = !this.seenBatch || msg.from === this.cursor;
        this.seenBatch = true;
        this.cursor = msg.to;
        if (msg.events.length) this.cb.apply(msg.events);
        if (!continuous) this.cb.reconcile();
        break;
      }
      case 'status':
        if (!this.isLeader) this.setStatus(msg.status, false);
        break;
      case 'resync':
        if (!this.isLeader) {
          this.cursor = msg.cursor;
          this.cb.resync().catch(() => this.cb.reconcile());
        }
        break;
      case 'unauthorized':
        this.cb.unauthorized();
        break;
      case 'hello':
        if (this.isLeader) this.post({ type: 'status', status: this.state });
        this.onVisibility();
        break;
      case 'visibility':
        this.visible.set(msg.tab, msg.visible);
        break;
      default:
    }
  }

  sleep(ms) {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wakeSleep = done;
    });
  }

  wakeUp() {
    const w = this.wakeSleep;
    this.wakeSleep = null;
    if (w) w();
  }

  /** The leader's loop; returns (releasing the lock) only when the tab stops or signs out. */
  async lead() {
    this.isLeader = true;
    this.visible.clear();
    this.post({ type: 'hello' });
    this.post({ type: 'status', status: this.state });
    let failures = 0;
    // The first poll of a new leader, and the first after a failure, ask for an immediate
    // answer (timeout=0): a held poll answers only when something happens, and until some
    // poll answers the tab cannot tell that the server is back.
    let quick = true;
    while (this.running) {
      let timer = null;
      try {
        if (this.needResync) {
          this.cursor = await this.cb.resync();
          this.needResync = false;
          this.post({ type: 'resync', cursor: this.cursor });
        }
        const from = this.cursor;
        this.pollAbort = new AbortController();
        const abort = this.pollAbort;
        timer = setTimeout(() => abort.abort(), CLIENT_TIMEOUT_MS);
        const ans = await api.get(`/events?cursor=${seg(from)}&timeout=${quick ? 0 : POLL_TIMEOUT_S}`, {
          signal: abort.signal,
          quiet401: true,
        });
        clearTimeout(timer);
        if (!this.running) break;
        failures = 0;
        quick = false;
        this.setStatus('online');
        this.cursor = ans.cursor;
        this.post({ type: 'batch', from, to: ans.cursor, events: ans.events });
        if (ans.events.length) this.cb.apply(ans.events);
        // Poll again at once, whether or not `more` is set: the next answer continues from here.
      } catch (e) {
        clearTimeout(timer);
        if (!this.running) break;
        if (e instanceof ApiError && e.status === 401) {
          this.post({ type: 'unauthorized' });
          this.cb.unauthorized();
          break;
        }
        if (e instanceof ApiError && (e.status === 410 || e.code === 'invalid_cursor')) {
          // The cursor fell out of the retention window (or the server's data was reset).
          this.needResync = true;
          continue;
        }
        failures += 1;
        quick = true;
        this.setStatus('reconnecting');
        await this.sleep(backoffDelay(failures, e && e.retryAfter));
      }
    }
    this.isLeader = false;
  }
}
