// What the client knows: the signed-in user, conversations, loaded message history, pending
// sends, friends, groups and requests. Poll events are applied here, and applying is
// idempotent (a tab may see an event twice after a resync or a leader change): messages are
// keyed by conversation + seq, pending sends by client_msg_id, and counters only move
// forward. A seq gap in a loaded conversation is filled from history (`after_seq`).

import { api, seg } from './api.js';

const PAGE = 50;
const FILL_PAGE = 200;

function newThread() {
  return {
    list: [], // confirmed messages, ascending by seq
    bySeq: new Map(),
    pending: new Map(), // client_msg_id → {client_msg_id, body, ts, status, error, to}
    loaded: false,
    loading: null,
    hasOlder: true,
    loadingOlder: false,
    filling: false,
  };
}

export class State extends EventTarget {
  constructor() {
    super();
    this.me = null;
    this.settings = {};
    this.convs = new Map();
    this.threads = new Map();
    this.friends = new Map();
    this.users = new Map();
    this.groups = new Map();
    this.members = new Map(); // group id → [{user, role}]
    this.incoming = [];
    this.outgoing = [];
    this.joinRequests = new Map(); // group id → [{user, ts}]
    this.knownGroups = new Map(); // any group seen (search results), for names in notices
    this.openCid = null;
    this.convRefresh = null;
  }

  on(type, fn) {
    const l = (e) => fn(e.detail);
    this.addEventListener(type, l);
    return () => this.removeEventListener(type, l);
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  // ---- loading -------------------------------------------------------------------------

  /**
   * Loads everything. The conversation list comes first because its cursor is where
   * polling starts; whatever the later calls see is then at least as new, and events after
   * the cursor are applied again harmlessly.
   */
  async load() {
    const c = await api.get('/conversations');
    const [me, friends, groups, reqs] = await Promise.all([
      api.get('/me'),
      api.get('/friends'),
      api.get('/me/groups'),
      api.get('/friend-requests'),
    ]);
    this.setMe(me.user);
    this.settings = me.settings || {};
    this.friends = new Map(friends.friends.map((u) => [u.id, u]));
    friends.friends.forEach((u) => this.rememberUser(u));
    this.groups = new Map(groups.groups.map((g) => [g.id, g]));
    groups.groups.forEach((g) => this.knownGroups.set(g.id, g));
    this.incoming = reqs.incoming;
    this.outgoing = reqs.outgoing;
    reqs.incoming.forEach((r) => this.rememberUser(r.from));
    reqs.outgoing.forEach((r) => this.rememberUser(r.to));
    this.replaceConvs(c.conversations);
    this.emit('me', this.me);
    this.emit('settings', this.settings);
    this.emit('friends');
    this.emit('groups');
    this.emit('requests');
    this.emit('convs');
    this.loadJoinRequests();
    return c.cursor;
  }

  /** After a 410 or a broken cursor chain: reload lists, catch up the open conversation. */
  async resync() {
    const cursor = await this.load();
    for (const [cid, t] of this.threads) {
      if (!this.convs.has(cid)) {
        this.threads.delete(cid);
      } else if (cid !== this.openCid) {
        // Reloaded from the newest page when opened again.
        t.list = [];
        t.bySeq = new Map();
        t.loaded = false;
        t.hasOlder = true;
      }
    }
    if (this.openCid) {
      if (this.convs.has(this.openCid)) await this.fillGaps(this.openCid);
      else this.closeConversation();
    }
    return cursor;
  }

  /** Catches up without a new cursor (a follower tab saw a batch that did not continue its own). */
  reconcile() {
    clearTimeout(this.reconcileTimer);
    this.reconcileTimer = setTimeout(() => this.resync().catch(() => {}), 50);
  }

  replaceConvs(list) {
    const seen = new Set();
    for (const c of list) {
      seen.add(c.id);
      this.mergeConv(c);
    }
    for (const id of [...this.convs.keys()]) if (!seen.has(id)) this.convs.delete(id);
  }

  mergeConv(c) {
    if (c.peer) this.rememberUser(c.peer);
    if (c.group) {
      this.groups.set(c.group.id, c.group);
      this.knownGroups.set(c.group.id, c.group);
    }
    // Receipt marks of a direct chat: the server's peer positions are the base, and live
    // `conversation.delivered` / `.read` events only raise them (a mark never goes back).
    const peerRead = c.peer_read_seq || 0;
    const peerDelivered = Math.max(c.peer_delivered_seq || 0, peerRead);
    const old = this.convs.get(c.id);
    if (!old) {
      this.convs.set(c.id, { ...c, peerDelivered, peerRead, touched: 0 });
      return;
    }
    if (peerRead > old.peerRead || peerDelivered > old.peerDelivered) {
      old.peerRead = Math.max(old.peerRead, peerRead);
      old.peerDelivered = Math.max(old.peerDelivered, peerDelivered, old.peerRead);
      this.emit('marks', c.id);
    }
    old.kind = c.kind;
    if (c.peer) old.peer = c.peer;
    if (c.group) old.group = c.group;
    if (c.last_seq >= old.last_seq) {
      old.last_seq = c.last_seq;
      old.last_message = c.last_message;
    }
    old.read_seq = Math.max(old.read_seq, c.read_seq);
  }

  /** Refetches the conversation list soon (a conversation appeared that we do not know). */
  refreshConvsSoon() {
    if (this.convRefresh) return;
    this.convRefresh = setTimeout(async () => {
      try {
        const c = await api.get('/conversations');
        // Merge only: events keep flowing meanwhile, and merging never moves anything back.
        for (const conv of c.conversations) this.mergeConv(conv);
        this.emit('convs');
        if (this.openCid && this.threads.get(this.openCid)) this.fillGaps(this.openCid);
      } catch {
        // The next event or resync tries again.
      } finally {
        this.convRefresh = null;
      }
    }, 100);
  }

  setMe(user) {
    this.me = user;
    this.rememberUser(user);
  }

  rememberUser(u) {
    if (!u) return;
    this.users.set(u.id, u);
  }

  userName(id) {
    if (this.me && id === this.me.id) return this.me.display_name;
    const u = this.users.get(id);
    return u ? u.display_name : `User ${id}`;
  }

  avatarOf(id) {
    const u = this.users.get(id);
    return u ? u.avatar_url : `/api/v1/users/${id}/avatar`;
  }

  // ---- derived -------------------------------------------------------------------------

  unread(conv) {
    return Math.max(0, conv.last_seq - conv.read_seq);
  }

  totalUnread() {
    let n = 0;
    for (const c of this.convs.values()) n += this.unread(c);
    return n;
  }

  convTitle(conv) {
    if (conv.kind === 'group') return conv.group ? conv.group.name : 'Group';
    return conv.peer ? conv.peer.display_name : 'Conversation';
  }

  lastActivity(conv) {
    return Math.max(conv.last_message ? conv.last_message.ts : 0, conv.touched || 0);
  }

  sortedConvs() {
    return [...this.convs.values()].sort((a, b) => this.lastActivity(b) - this.lastActivity(a));
  }

  convWithPeer(userId) {
    for (const c of this.convs.values()) if (c.kind === 'direct' && c.peer && c.peer.id === userId) return c;
    return null;
  }

  convOfGroup(groupId) {
    for (const c of this.convs.values()) if (c.kind === 'group' && c.group && c.group.id === groupId) return c;
    return null;
  }

  thread(cid) {
    let t = this.threads.get(cid);
    if (!t) {
      t = newThread();
      this.threads.set(cid, t);
    }
    return t;
  }

  /** 'pending' | 'failed' | 'sent' | 'delivered' | 'read' for one of my messages. */
  markOf(conv, msg) {
    if (conv.kind !== 'direct') return 'sent';
    if (msg.seq <= conv.peerRead) return 'read';
    if (msg.seq <= conv.peerDelivered) return 'delivered';
    return 'sent';
  }

  myRole(groupId) {
    const g = this.groups.get(groupId);
    if (g && this.me && g.owner_id === this.me.id) return 'owner';
    const m = (this.members.get(groupId) || []).find((x) => x.user.id === this.me.id);
    return m ? m.role : 'member';
  }

  pendingRequestCount() {
    let n = this.incoming.length;
    for (const list of this.joinRequests.values()) n += list.length;
    return n;
  }

  // ---- history -------------------------------------------------------------------------

  insert(t, msg) {
    const had = t.bySeq.get(msg.seq);
    if (had) {
      if (msg.recalled && !had.recalled) {
        had.recalled = true;
        had.body = '';
        return true;
      }
      return false;
    }
    t.bySeq.set(msg.seq, msg);
    const list = t.list;
    let i = list.length;
    while (i > 0 && list[i - 1].seq > msg.seq) i--;
    list.splice(i, 0, msg);
    return true;
  }

  openConversation(cid) {
    this.openCid = cid;
    this.emit('open', cid);
    return this.ensureLoaded(cid);
  }

  closeConversation() {
    this.openCid = null;
    this.emit('open', null);
  }

  async ensureLoaded(cid) {
    const t = this.thread(cid);
    if (t.loaded) {
      await this.fillGaps(cid);
      return;
    }
    if (!t.loading) {
      t.loading = (async () => {
        try {
          const { messages } = await api.get(`/conversations/${seg(cid)}/messages?limit=${PAGE}`);
          for (const m of messages) this.insert(t, m);
          t.loaded = true;
          t.hasOlder = messages.length === PAGE && messages[0].seq > 1;
          this.emit('messages', { cid, kind: 'load' });
          await this.fillGaps(cid);
        } finally {
          t.loading = null;
        }
      })();
    }
    await t.loading;
    const conv = this.convs.get(cid);
    if (conv && conv.kind === 'group' && conv.group) this.loadMembers(conv.group.id).catch(() => {});
  }

  async loadOlder(cid) {
    const t = this.thread(cid);
    if (!t.loaded || !t.hasOlder || t.loadingOlder || !t.list.length) return false;
    t.loadingOlder = true;
    this.emit('messages', { cid, kind: 'loading-older' });
    try {
      const before = t.list[0].seq;
      const { messages } = await api.get(`/conversations/${seg(cid)}/messages?before_seq=${before}&limit=${PAGE}`);
      for (const m of messages) this.insert(t, m);
      t.hasOlder = messages.length === PAGE && messages[0].seq > 1;
      return messages.length > 0;
    } finally {
      t.loadingOlder = false;
      this.emit('messages', { cid, kind: 'older' });
    }
  }

  /**
   * Fills holes between the oldest loaded message and the conversation's newest seq.
   * Serialised per conversation; a request that finds nothing new ends the loop.
   */
  async fillGaps(cid) {
    const t = this.threads.get(cid);
    const conv = this.convs.get(cid);
    if (!t || !t.loaded || !conv || t.filling) return;
    t.filling = true;
    try {
      for (let round = 0; round < 50; round++) {
        const target = Math.max(conv.last_seq, t.list.length ? t.list[t.list.length - 1].seq : 0);
        const hole = this.firstHole(t, target);
        if (hole == null) break;
        if (target - hole > FILL_PAGE * 5) {
          // Far behind: start over from the newest page rather than crawl forward.
          t.list = [];
          t.bySeq = new Map();
          const { messages } = await api.get(`/conversations/${seg(cid)}/messages?limit=${PAGE}`);
          for (const m of messages) this.insert(t, m);
          t.hasOlder = messages.length === PAGE && messages[0].seq > 1;
          this.emit('messages', { cid, kind: 'load' });
          continue;
        }
        const { messages } = await api.get(
          `/conversations/${seg(cid)}/messages?after_seq=${hole - 1}&limit=${FILL_PAGE}`,
        );
        let added = 0;
        for (const m of messages) {
          if (this.insert(t, m)) added++;
          this.bumpConv(conv, m);
        }
        if (added) this.emit('messages', { cid, kind: 'fill' });
        if (!messages.length) break;
      }
    } catch {
      // Left for the next event or reconnect to retry.
    } finally {
      t.filling = false;
    }
  }

  /** The lowest missing seq above the oldest loaded one, up to `target`; null when complete. */
  firstHole(t, target) {
    if (!t.list.length) return target > 0 ? 1 : null;
    let expect = t.list[0].seq;
    for (const m of t.list) {
      if (m.seq > expect) return expect;
      expect = m.seq + 1;
    }
    return expect <= target ? expect : null;
  }

  bumpConv(conv, m) {
    if (m.seq > conv.last_seq) {
      conv.last_seq = m.seq;
      conv.last_message = m;
    } else if (conv.last_message && conv.last_message.seq === m.seq && m.recalled) {
      conv.last_message = m;
    }
    if (this.me && m.sender_id === this.me.id) conv.read_seq = Math.max(conv.read_seq, m.seq);
  }

  // ---- sending ---------------------------------------------------------------------------

  send(cid, body) {
    const conv = this.convs.get(cid);
    if (!conv) return;
    const to = conv.kind === 'direct' ? { user: conv.peer.id } : { group: conv.group.id };
    const p = { client_msg_id: crypto.randomUUID(), body, ts: Date.now(), status: 'sending', error: null, to };
    this.thread(cid).pending.set(p.client_msg_id, p);
    conv.touched = Date.now();
    this.emit('messages', { cid, kind: 'pending' });
    this.emit('convs');
    this.deliver(cid, p);
  }

  async deliver(cid, p) {
    try {
      const { message } = await api.post('/messages', { to: p.to, client_msg_id: p.client_msg_id, body: p.body });
      this.applyMessage(message, false);
      this.emit('convs');
    } catch (e) {
      // Only a pending entry still waiting is marked: the event may have settled it already.
      const t = this.thread(cid);
      if (t.pending.get(p.client_msg_id) === p) {
        p.status = 'failed';
        p.error = e.message;
        this.emit('messages', { cid, kind: 'pending' });
      }
    }
  }

  /** Sends a failed message again with the same client_msg_id, so it is stored once. */
  retry(cid, clientMsgId) {
    const p = this.thread(cid).pending.get(clientMsgId);
    if (!p || p.status === 'sending') return;
    p.status = 'sending';
    p.error = null;
    this.emit('messages', { cid, kind: 'pending' });
    this.deliver(cid, p);
  }

  discard(cid, clientMsgId) {
    this.thread(cid).pending.delete(clientMsgId);
    this.emit('messages', { cid, kind: 'pending' });
  }

  async recall(cid, seq) {
    await api.del(`/conversations/${seg(cid)}/messages/${seq}`);
    this.applyEvents([{ type: 'message.recalled', conversation_id: cid, seq }]);
  }

  /** Tells the server we read up to the newest message (and shows it at once). */
  markRead(cid) {
    const conv = this.convs.get(cid);
    if (!conv || conv.last_seq <= conv.read_seq) return;
    const seq = conv.last_seq;
    conv.read_seq = seq;
    this.emit('convs');
    api.post(`/conversations/${seg(cid)}/read`, { seq }).catch(() => {
      // A later read covers it.
    });
  }

  // ---- groups and requests ---------------------------------------------------------------

  async loadMembers(groupId) {
    const { members } = await api.get(`/groups/${groupId}/members`);
    members.forEach((m) => this.rememberUser(m.user));
    this.members.set(groupId, members);
    this.emit('members', groupId);
    return members;
  }

  /** Pending join requests of the groups the user manages (others answer 403). */
  async loadJoinRequests() {
    const groups = [...this.groups.values()];
    await Promise.all(
      groups.map(async (g) => {
        try {
          const { requests } = await api.get(`/groups/${g.id}/requests`);
          requests.forEach((r) => this.rememberUser(r.user));
          this.joinRequests.set(g.id, requests);
        } catch {
          this.joinRequests.delete(g.id);
        }
      }),
    );
    this.emit('requests');
  }

  removeGroup(groupId) {
    const g = this.groups.get(groupId);
    this.groups.delete(groupId);
    this.members.delete(groupId);
    this.joinRequests.delete(groupId);
    const cid = g ? g.conversation_id : `g${groupId}`;
    const conv = this.convOfGroup(groupId) || this.convs.get(cid);
    if (conv) {
      this.convs.delete(conv.id);
      this.threads.delete(conv.id);
      if (this.openCid === conv.id) this.closeConversation();
    }
  }

  upsertGroup(group) {
    this.groups.set(group.id, group);
    this.knownGroups.set(group.id, group);
    const conv = this.convOfGroup(group.id) || this.convs.get(group.conversation_id);
    if (conv) conv.group = group;
    else this.refreshConvsSoon();
  }

  // ---- events --------------------------------------------------------------------------

  /** A confirmed message (from an event or a send's answer). Returns whether it was new. */
  applyMessage(m, live) {
    const conv = this.convs.get(m.conversation_id);
    const t = this.thread(m.conversation_id);
    const before = t.list.length ? t.list[t.list.length - 1].seq : null;
    const wasPending = t.pending.has(m.client_msg_id) && this.me && m.sender_id === this.me.id;
    if (wasPending) t.pending.delete(m.client_msg_id);
    const added = this.insert(t, m);
    if (!conv) {
      this.refreshConvsSoon();
    } else {
      const fresh = m.seq > conv.last_seq;
      this.bumpConv(conv, m);
      if (live && fresh && added && this.me && m.sender_id !== this.me.id) this.emit('incoming', { conv, message: m });
    }
    if (added || wasPending) this.emit('messages', { cid: m.conversation_id, kind: 'new' });
    if (t.loaded && before != null && m.seq > before + 1) this.fillGaps(m.conversation_id);
    return added;
  }

  applyEvents(events) {
    let convs = false;
    for (const e of events) {
      try {
        switch (e.type) {
          case 'message.new':
            this.applyMessage(e.message, true);
            convs = true;
            break;
          case 'message.recalled': {
            const t = this.threads.get(e.conversation_id);
            const m = t && t.bySeq.get(e.seq);
            if (m && !m.recalled) {
              m.recalled = true;
              m.body = '';
              this.emit('messages', { cid: e.conversation_id, kind: 'update' });
            }
            const conv = this.convs.get(e.conversation_id);
            if (conv && conv.last_message && conv.last_message.seq === e.seq) {
              conv.last_message = { ...conv.last_message, recalled: true, body: '' };
              convs = true;
            }
            break;
          }
          case 'conversation.read': {
            const conv = this.convs.get(e.conversation_id);
            if (!conv) break;
            if (this.me && e.user_id === this.me.id) {
              conv.read_seq = Math.max(conv.read_seq, e.seq);
              convs = true;
            } else if (conv.kind === 'direct') {
              conv.peerRead = Math.max(conv.peerRead, e.seq);
              conv.peerDelivered = Math.max(conv.peerDelivered, e.seq);
              this.emit('marks', conv.id);
            }
            break;
          }
          case 'conversation.delivered': {
            const conv = this.convs.get(e.conversation_id);
            if (!conv || (this.me && e.user_id === this.me.id)) break;
            conv.peerDelivered = Math.max(conv.peerDelivered, e.seq);
            this.emit('marks', conv.id);
            break;
          }
          case 'friend.request': {
            const r = e.request;
            this.rememberUser(r.from);
            this.rememberUser(r.to);
            if (this.me && r.to.id === this.me.id) {
              if (!this.incoming.some((x) => x.id === r.id)) this.incoming.push(r);
            } else if (!this.outgoing.some((x) => x.id === r.id)) {
              this.outgoing.push(r);
            }
            this.emit('requests');
            this.emit('friend-request', r);
            break;
          }
          case 'friend.accepted': {
            this.friends.set(e.user.id, e.user);
            this.rememberUser(e.user);
            this.incoming = this.incoming.filter((r) => r.from.id !== e.user.id);
            this.outgoing = this.outgoing.filter((r) => r.to.id !== e.user.id);
            if (!this.convs.has(e.conversation_id)) this.refreshConvsSoon();
            this.emit('friends');
            this.emit('requests');
            break;
          }
          case 'friend.declined':
            this.outgoing = this.outgoing.filter((r) => r.id !== e.request_id);
            this.emit('requests');
            break;
          case 'friend.removed':
            this.friends.delete(e.user_id);
            this.incoming = this.incoming.filter((r) => r.from.id !== e.user_id);
            this.outgoing = this.outgoing.filter((r) => r.to.id !== e.user_id);
            this.emit('friends');
            this.emit('requests');
            break;
          case 'presence': {
            const apply = (u) => (u && u.id === e.user_id ? { ...u, online: e.online } : u);
            if (this.friends.has(e.user_id)) this.friends.set(e.user_id, apply(this.friends.get(e.user_id)));
            if (this.users.has(e.user_id)) this.users.set(e.user_id, apply(this.users.get(e.user_id)));
            for (const c of this.convs.values()) if (c.peer && c.peer.id === e.user_id) c.peer = apply(c.peer);
            this.emit('friends');
            this.emit('presence', e.user_id);
            convs = true;
            break;
          }
          case 'profile.updated': {
            const u = e.user;
            if (this.me && u.id === this.me.id) {
              this.me = { ...this.me, ...u };
              this.emit('me', this.me);
            }
            this.rememberUser(u);
            if (this.friends.has(u.id)) this.friends.set(u.id, u);
            for (const c of this.convs.values()) if (c.peer && c.peer.id === u.id) c.peer = u;
            for (const list of this.members.values()) for (const m of list) if (m.user.id === u.id) m.user = u;
            this.emit('friends');
            this.emit('profile', u);
            convs = true;
            break;
          }
          case 'settings.updated':
            this.settings = e.settings || {};
            this.emit('settings', this.settings);
            break;
          case 'group.updated':
            this.upsertGroup(e.group);
            this.emit('groups');
            this.emit('group', e.group.id);
            convs = true;
            break;
          case 'group.member_joined': {
            this.rememberUser(e.user);
            if (e.group) this.upsertGroup(e.group);
            if (this.me && e.user.id === this.me.id) {
              this.refreshConvsSoon();
            } else {
              const list = this.members.get(e.group_id);
              if (list && !list.some((m) => m.user.id === e.user.id)) list.push({ user: e.user, role: 'member' });
              const reqs = this.joinRequests.get(e.group_id);
              if (reqs) this.joinRequests.set(e.group_id, reqs.filter((r) => r.user.id !== e.user.id));
              this.emit('requests');
            }
            this.emit('members', e.group_id);
            this.emit('groups');
            this.emit('group', e.group_id);
            convs = true;
            break;
          }
          case 'group.member_left': {
            if (this.me && e.user_id === this.me.id) {
              const name = (this.groups.get(e.group_id) || e.group || {}).name;
              this.removeGroup(e.group_id);
              this.emit('notice', { text: name ? `You are no longer in “${name}”.` : 'You left a group.' });
            } else {
              if (e.group) this.upsertGroup(e.group);
              const list = this.members.get(e.group_id);
              if (list) this.members.set(e.group_id, list.filter((m) => m.user.id !== e.user_id));
              this.emit('members', e.group_id);
            }
            this.emit('groups');
            this.emit('group', e.group_id);
            convs = true;
            break;
          }
          case 'group.member_role': {
            const list = this.members.get(e.group_id);
            if (list) {
              for (const m of list) if (m.user.id === e.user_id) m.role = e.role;
              if (e.role === 'owner') {
                for (const m of list) if (m.user.id !== e.user_id && m.role === 'owner') m.role = 'admin';
              }
            }
            this.emit('members', e.group_id);
            if (this.me && e.user_id === this.me.id) this.loadJoinRequests();
            break;
          }
          case 'group.join_request': {
            this.rememberUser(e.user);
            const list = this.joinRequests.get(e.group_id) || [];
            if (!list.some((r) => r.user.id === e.user.id)) list.push({ user: e.user, ts: e.ts });
            this.joinRequests.set(e.group_id, list);
            this.emit('requests');
            break;
          }
          case 'group.join_declined': {
            const g = this.knownGroups.get(e.group_id);
            this.emit('notice', { text: g ? `Your request to join “${g.name}” was declined.` : 'A group declined your request to join.' });
            break;
          }
          case 'group.dissolved': {
            const g = this.groups.get(e.group_id) || this.knownGroups.get(e.group_id);
            this.removeGroup(e.group_id);
            this.emit('notice', { text: g ? `The group “${g.name}” was dissolved.` : 'A group was dissolved.' });
            this.emit('groups');
            convs = true;
            break;
          }
          default:
          // Unknown event types are new features of a newer server: ignore them.
        }
      } catch (err) {
        console.error('event not applied', e, err);
      }
    }
    if (convs) this.emit('convs');
  }
}
