// The chat pane: the conversation's header, its history (older pages load as you scroll up,
// with day separators), bubbles with avatar, name and time, receipt marks on my messages in
// direct chats, recalled messages, pending sends with retry, and the composer (Enter sends,
// Shift+Enter is a new line) with its emoji picker.

import { h, icon, iconButton } from '../dom.js';
import { avatar } from './avatar.js';
import { dayKey, dayLabel, timeOf, fullTime } from '../format.js';
import { EmojiPicker } from './emoji.js';
import { openGroupInfo } from './groups.js';
import { openContact } from './contact.js';

const MAX_BODY = 4000;
const RECALL_WINDOW_MS = 120000; // the server's default; it has the last word
const RUN_GAP_MS = 5 * 60000;
const MARK_LABEL = { sending: 'Sending', failed: 'Not sent', sent: 'Sent', delivered: 'Delivered', read: 'Read' };

/** A short message of emoji alone is shown large, without a bubble. */
function isEmojiOnly(text) {
  if (text.length > 48 || !/[\p{Extended_Pictographic}\u{1F1E6}-\u{1F1FF}]/u.test(text)) return false;
  const rest = text.replace(/[\p{Extended_Pictographic}\u{1F1E6}-\u{1F1FF}\u{1F3FB}-\u{1F3FF}\u{E0020}-\u{E007F}\u200d\ufe0f\u20e3\s]/gu, '');
  return rest === '';
}

export class ChatPane {
  constructor(ctx) {
    this.ctx = ctx;
    this.state = ctx.state;
    this.cid = null;
    this.el = h('main', { class: 'chat-pane', testid: 'chat-pane' });
    this.showEmpty();
    const { state } = this;
    this.off = [
      state.on('open', (cid) => this.open(cid)),
      state.on('messages', (d) => { if (d.cid === this.cid) this.renderMessages(d.kind); }),
      state.on('marks', (cid) => { if (cid === this.cid) this.renderMessages('marks'); }),
      state.on('convs', () => this.cid && this.renderHeader()),
      state.on('members', () => this.cid && this.renderMessages('names')),
      state.on('profile', () => this.cid && (this.renderHeader(), this.renderMessages('names'))),
      state.on('group', () => this.cid && this.renderHeader()),
    ];
    this.onVisible = () => this.maybeRead();
    document.addEventListener('visibilitychange', this.onVisible);
    window.addEventListener('focus', this.onVisible);
    // Recall buttons disappear when the recall window passes.
    this.ticker = setInterval(() => this.cid && this.renderMessages('tick'), 20000);
  }

  destroy() {
    this.off.forEach((f) => f());
    document.removeEventListener('visibilitychange', this.onVisible);
    window.removeEventListener('focus', this.onVisible);
    clearInterval(this.ticker);
    if (this.resizer) this.resizer.disconnect();
    if (this.outside) document.removeEventListener('mousedown', this.outside);
  }

  showEmpty() {
    this.el.replaceChildren(
      h('div', { class: 'chat-empty', testid: 'chat-empty' },
        h('div', { class: 'chat-empty-art', 'aria-hidden': 'true' }, icon('chat')),
        h('h2', { text: 'Pick a conversation' }),
        h('p', { class: 'muted', text: 'Choose a chat on the left, or search for people and groups to start one.' })),
    );
  }

  open(cid) {
    this.cid = cid;
    this.nodes = new Map();
    this.drafts = this.drafts || new Map();
    if (!cid) {
      this.showEmpty();
      return;
    }
    const conv = this.state.convs.get(cid);
    if (!conv) return;

    this.headAvatar = h('span', { class: 'head-avatar' });
    this.headTitle = h('h2', { class: 'chat-title', testid: 'chat-title', id: 'chat-title' });
    this.headSub = h('p', { class: 'chat-sub muted', testid: 'chat-sub' });
    const back = iconButton('back', 'Back to the list', { class: 'back-btn', testid: 'chat-back', onclick: () => this.state.closeConversation() });
    const info = iconButton(conv.kind === 'group' ? 'users' : 'info', conv.kind === 'group' ? 'Group info and members' : 'Contact info', {
      testid: 'chat-info',
      onclick: () => (conv.kind === 'group' ? openGroupInfo(this.ctx, conv.group.id) : openContact(this.ctx, conv)),
    });
    const header = h('header', { class: 'chat-head' }, back, this.headAvatar, h('div', { class: 'chat-head-text' }, this.headTitle, this.headSub), info);

    this.olderStatus = h('div', { class: 'older-status muted', role: 'status' });
    this.list = h('div', { class: 'msg-list' });
    this.scroller = h('div', {
      class: 'messages',
      role: 'log',
      'aria-labelledby': 'chat-title',
      tabindex: '0',
      testid: 'messages',
      onscroll: () => this.onScroll(),
    }, this.olderStatus, this.list);
    this.jump = h('button', { type: 'button', class: 'jump-btn', hidden: true, testid: 'jump-latest', onclick: () => this.scrollToBottom(true) }, h('span', { text: 'New messages' }), icon('back', 'rot-down'));

    this.textarea = h('textarea', {
      class: 'composer-input',
      rows: '1',
      placeholder: 'Write a message…',
      'aria-label': 'Message',
      'aria-describedby': 'composer-help',
      testid: 'composer',
      maxlength: String(MAX_BODY * 2),
      oninput: () => this.onInput(),
      onkeydown: (e) => this.onKey(e),
    });
    this.textarea.value = this.drafts.get(cid) || '';
    this.counter = h('span', { class: 'composer-count', 'aria-live': 'polite' });
    this.sendBtn = h('button', { type: 'submit', class: 'send-btn', 'aria-label': 'Send', title: 'Send (Enter)', testid: 'send' }, icon('send'));
    this.emojiBtn = iconButton('smile', 'Emoji', { testid: 'emoji-toggle', 'aria-expanded': 'false', 'aria-haspopup': 'dialog', onclick: () => this.picker.toggle() });
    this.picker = new EmojiPicker({
      onPick: (e) => this.insert(e),
      onClose: () => {
        this.emojiBtn.setAttribute('aria-expanded', 'false');
        this.textarea.focus();
      },
    });
    const pickerObserver = new MutationObserver(() => this.emojiBtn.setAttribute('aria-expanded', String(this.picker.open)));
    pickerObserver.observe(this.picker.el, { attributes: true, attributeFilter: ['hidden'] });
    this.composer = h('form', {
      class: 'composer',
      testid: 'composer-form',
      onsubmit: (e) => {
        e.preventDefault();
        this.send();
      },
    }, this.emojiBtn, h('div', { class: 'composer-field' }, this.textarea, this.counter), this.sendBtn,
    h('p', { id: 'composer-help', class: 'sr-only', text: 'Enter sends, Shift+Enter starts a new line.' }));

    const section = h('section', { class: 'chat', 'aria-labelledby': 'chat-title', testid: 'chat', dataset: { cid } },
      header, h('div', { class: 'messages-wrap' }, this.scroller, this.jump), this.picker.el, this.composer);
    this.el.replaceChildren(section);
    // Stay pinned to the newest message when the pane changes size (window, keyboard, composer).
    if (this.resizer) this.resizer.disconnect();
    this.pinned = true;
    this.resizer = new ResizeObserver(() => {
      if (this.pinned) this.scroller.scrollTop = this.scroller.scrollHeight;
    });
    this.resizer.observe(this.scroller);
    if (this.outside) document.removeEventListener('mousedown', this.outside);
    const picker = this.picker;
    const emojiBtn = this.emojiBtn;
    this.outside = (e) => {
      if (picker.open && !picker.el.contains(e.target) && !emojiBtn.contains(e.target)) picker.hide();
    };
    document.addEventListener('mousedown', this.outside);
    this.renderHeader();
    this.renderMessages('load');
    this.onInput();
    if (window.matchMedia('(pointer: fine)').matches) this.textarea.focus();
  }

  renderHeader() {
    const conv = this.state.convs.get(this.cid);
    if (!conv || !this.headTitle) return;
    const title = this.state.convTitle(conv);
    this.headTitle.textContent = title;
    if (conv.kind === 'group') {
      const g = conv.group;
      this.headAvatar.replaceChildren(avatar(g && g.avatar_url, { size: 'md' }));
      this.headSub.textContent = g ? `${g.member_count} member${g.member_count === 1 ? '' : 's'}` : '';
    } else {
      const p = conv.peer;
      this.headAvatar.replaceChildren(avatar(p && p.avatar_url, { size: 'md', online: p ? !!p.online : null }));
      this.headSub.textContent = p ? `${p.online ? 'online' : 'offline'} · @${p.username}` : '';
    }
  }

  nearBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
  }

  scrollToBottom(smooth = false) {
    this.scroller.scrollTo({ top: this.scroller.scrollHeight, behavior: smooth ? 'smooth' : 'auto' });
    this.jump.hidden = true;
  }

  onScroll() {
    this.pinned = this.nearBottom();
    if (this.pinned) {
      this.jump.hidden = true;
      this.maybeRead();
    }
    if (this.scroller.scrollTop < 200) this.loadOlder();
  }

  async loadOlder() {
    const t = this.state.threads.get(this.cid);
    if (!t || !t.loaded || !t.hasOlder || t.loadingOlder) return;
    try {
      await this.state.loadOlder(this.cid);
    } catch (e) {
      this.ctx.toast(e.message, 'error');
    }
  }

  /** Marks the conversation read when a person can actually see it. */
  maybeRead() {
    if (!this.cid || document.visibilityState !== 'visible') return;
    const t = this.state.threads.get(this.cid);
    if (!t || !t.loaded) return;
    this.state.markRead(this.cid);
  }

  canRecall(conv, m) {
    if (m.recalled) return false;
    const me = this.state.me;
    if (conv.kind === 'group' && conv.group) {
      const role = this.state.myRole(conv.group.id);
      if (role === 'owner' || role === 'admin') return true;
    }
    return m.sender_id === me.id && Date.now() - m.ts < RECALL_WINDOW_MS;
  }

  async recall(m) {
    try {
      await this.state.recall(this.cid, m.seq);
    } catch (e) {
      this.ctx.toast(e.message, 'error');
    }
  }

  bubble({ key, mine, senderId, head, body, ts, recalled, mark, pending, conv, message }) {
    const { state } = this;
    const name = mine ? 'You' : state.userName(senderId);
    const actions = [];
    if (message && this.canRecall(conv, message)) {
      actions.push(h('button', { type: 'button', class: 'msg-action', testid: 'recall', 'aria-label': 'Recall this message', title: 'Recall', onclick: () => this.recall(message) }, icon('undo'), h('span', { text: 'Recall' })));
    }
    if (pending && pending.status === 'failed') {
      actions.push(
        h('span', { class: 'msg-error', testid: 'send-error', text: pending.error || 'Not sent.' }),
        h('button', { type: 'button', class: 'msg-action strong', testid: 'retry', 'aria-label': 'Retry sending', onclick: () => state.retry(this.cid, pending.client_msg_id) }, icon('retry'), h('span', { text: 'Retry' })),
        h('button', { type: 'button', class: 'msg-action', testid: 'discard', 'aria-label': 'Discard this message', onclick: () => state.discard(this.cid, pending.client_msg_id) }, icon('close'), h('span', { text: 'Discard' })),
      );
    }
    const markEl = mark
      ? h('span', { class: ['mark', `mark-${mark}`], testid: 'mark', dataset: { mark }, role: 'img', 'aria-label': MARK_LABEL[mark], title: MARK_LABEL[mark] },
        icon(mark === 'sending' ? 'clock' : mark === 'failed' ? 'alert' : mark === 'sent' ? 'check' : 'checks'))
      : null;
    const content = recalled
      ? h('p', { class: 'msg-body recalled', testid: 'message-body', text: mine ? 'You recalled this message' : 'This message was recalled' })
      : h('p', { class: 'msg-body', testid: 'message-body', text: body, dir: 'auto' });
    const emojiOnly = !recalled && isEmojiOnly(body);
    return h(
      'div',
      {
        class: ['msg', mine ? 'mine' : 'theirs', head && 'head', pending && `pending ${pending.status}`, recalled && 'is-recalled', emojiOnly && 'emoji-only'],
        testid: 'message',
        dataset: { key, seq: message ? message.seq : null, cmid: message ? message.client_msg_id : pending.client_msg_id, sender: senderId, status: pending ? pending.status : 'confirmed' },
      },
      head ? h('span', { class: 'msg-avatar' }, avatar(mine ? state.me.avatar_url : state.avatarOf(senderId), { size: 'sm' })) : h('span', { class: 'msg-avatar' }),
      h('div', { class: 'msg-col' },
        head ? h('div', { class: 'msg-meta' }, h('span', { class: 'msg-name', testid: 'message-name', text: name })) : null,
        h('div', { class: 'bubble' }, content,
          h('span', { class: 'msg-foot' }, h('time', { datetime: new Date(ts).toISOString(), title: fullTime(ts), text: timeOf(ts) }), markEl)),
        actions.length ? h('div', { class: 'msg-actions' }, actions) : null),
    );
  }

  renderMessages(kind) {
    const conv = this.state.convs.get(this.cid);
    const t = this.state.threads.get(this.cid);
    if (!conv || !t || !this.list) return;
    const me = this.state.me;
    const s = this.scroller;
    const wasBottom = kind === 'load' || this.nearBottom();
    const fromBottom = s.scrollHeight - s.scrollTop;

    const nodes = [];
    let prev = null;
    const seen = new Map();
    const push = (item) => {
      const day = dayKey(item.ts);
      if (!prev || dayKey(prev.ts) !== day) {
        nodes.push(h('div', { class: 'day-sep', role: 'separator', testid: 'day-separator' }, h('span', { text: dayLabel(item.ts) })));
      }
      const head = !prev || prev.senderId !== item.senderId || item.ts - prev.ts > RUN_GAP_MS || dayKey(prev.ts) !== day;
      const sig = [item.key, head, item.recalled, item.mark, item.body.length, this.state.userName(item.senderId), item.mine ? me.avatar_url : this.state.avatarOf(item.senderId), item.pending && item.pending.error, item.message && this.canRecall(conv, item.message)].join('|');
      let node = this.nodes.get(sig);
      if (!node) node = this.bubble({ ...item, head, conv });
      seen.set(sig, node);
      nodes.push(node);
      prev = item;
    };
    for (const m of t.list) {
      const mine = m.sender_id === me.id;
      push({ key: `s${m.seq}`, mine, senderId: m.sender_id, body: m.body, ts: m.ts, recalled: !!m.recalled, mark: mine ? this.state.markOf(conv, m) : null, message: m });
    }
    for (const p of t.pending.values()) {
      push({ key: `p${p.client_msg_id}`, mine: true, senderId: me.id, body: p.body, ts: p.ts, recalled: false, mark: p.status, pending: p });
    }
    this.nodes = seen;

    if (!t.loaded) {
      this.olderStatus.textContent = 'Loading messages…';
    } else if (t.loadingOlder) {
      this.olderStatus.textContent = 'Loading older messages…';
    } else if (!t.hasOlder) {
      this.olderStatus.textContent = t.list.length ? 'This is the beginning of the conversation.' : 'No messages yet. Say hello!';
    } else {
      this.olderStatus.textContent = '';
    }

    const focused = document.activeElement;
    const keep = focused && this.list.contains(focused) ? focused : null;
    this.list.replaceChildren(...nodes);
    if (keep && keep.isConnected) keep.focus({ preventScroll: true });

    if (kind === 'older') {
      s.scrollTop = s.scrollHeight - fromBottom;
    } else if (wasBottom || kind === 'pending') {
      this.scrollToBottom();
    } else if (kind === 'new') {
      this.jump.hidden = false;
    }
    if (t.loaded) {
      // Keep loading older pages until the view can scroll, so scrolling up can ask for more.
      if (t.hasOlder && s.scrollHeight <= s.clientHeight + 200) this.loadOlder();
      if (kind === 'load' || kind === 'new' || kind === 'fill') {
        if (this.nearBottom()) this.maybeRead();
      }
    }
  }

  insert(text) {
    const ta = this.textarea;
    const start = ta.selectionStart ?? ta.value.length;
    const end = ta.selectionEnd ?? ta.value.length;
    ta.setRangeText(text, start, end, 'end');
    this.onInput();
  }

  onInput() {
    const ta = this.textarea;
    this.drafts.set(this.cid, ta.value);
    ta.style.height = 'auto';
    ta.style.height = `${Math.min(ta.scrollHeight, 180)}px`;
    const n = [...ta.value].length;
    const over = n > MAX_BODY;
    this.counter.textContent = n > MAX_BODY - 200 ? `${n}/${MAX_BODY}` : '';
    this.counter.classList.toggle('over', over);
    this.sendBtn.disabled = !ta.value.trim() || over;
  }

  onKey(e) {
    if (e.key === 'Enter' && !e.shiftKey && !e.altKey && !e.ctrlKey && !e.metaKey && !e.isComposing) {
      e.preventDefault();
      this.send();
    } else if (e.key === 'Escape' && this.picker.open) {
      e.preventDefault();
      this.picker.hide();
    }
  }

  send() {
    const body = this.textarea.value;
    if (!body.trim() || [...body].length > MAX_BODY) return;
    this.state.send(this.cid, body);
    this.textarea.value = '';
    this.onInput();
    this.picker.hide();
    this.textarea.focus();
  }
}
