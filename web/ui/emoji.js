// The emoji picker: a popup with category tabs (recently used first) and a grid of real
// buttons. Arrow keys move through the grid, Enter picks, Escape closes. Recently used emoji
// are kept in localStorage for this browser.

import { h } from '../dom.js';
import { prefs } from '../prefs.js';
import { CATEGORIES } from './emoji-data.js';

const RECENT_MAX = 32;
const COLS = 8;

export function rememberEmoji(e) {
  const list = prefs.recentEmoji().filter((x) => x !== e);
  list.unshift(e);
  prefs.setRecentEmoji(list.slice(0, RECENT_MAX));
}

export class EmojiPicker {
  /** `onPick(emoji)` inserts; `onClose()` runs when the picker hides itself. */
  constructor({ onPick, onClose }) {
    this.onPick = onPick;
    this.onClose = onClose;
    this.tabs = h('div', { class: 'emoji-tabs', role: 'tablist', 'aria-label': 'Emoji categories' });
    this.title = h('h3', { class: 'emoji-cat-title', id: 'emoji-cat-title' });
    this.grid = h('div', { class: 'emoji-grid', role: 'grid', 'aria-labelledby': 'emoji-cat-title', testid: 'emoji-grid', onkeydown: (e) => this.gridKey(e) });
    this.el = h('div', { class: 'emoji-picker', role: 'dialog', 'aria-label': 'Emoji picker', testid: 'emoji-picker', hidden: true, onkeydown: (e) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        this.hide();
      }
    } }, this.tabs, this.title, this.grid);
    this.category = null;
  }

  categories() {
    const recent = prefs.recentEmoji();
    const cats = [...CATEGORIES];
    if (recent.length) cats.unshift({ id: 'recent', name: 'Recently used', icon: '🕘', list: recent });
    return cats;
  }

  get open() {
    return !this.el.hidden;
  }

  show() {
    const cats = this.categories();
    // Open on the recently used ones when there are any; they are what people reach for.
    this.category = cats[0].id;
    this.renderTabs(cats);
    this.renderGrid(cats);
    this.el.hidden = false;
    const first = this.grid.querySelector('button');
    if (first) first.focus();
  }

  hide() {
    if (this.el.hidden) return;
    this.el.hidden = true;
    if (this.onClose) this.onClose();
  }

  toggle() {
    if (this.open) this.hide();
    else this.show();
  }

  renderTabs(cats) {
    this.tabs.replaceChildren(
      ...cats.map((c) =>
        h('button', {
          type: 'button',
          role: 'tab',
          class: 'emoji-tab',
          'aria-selected': String(c.id === this.category),
          'aria-label': c.name,
          title: c.name,
          testid: `emoji-cat-${c.id}`,
          text: c.icon,
          onclick: () => {
            this.category = c.id;
            this.renderTabs(cats);
            this.renderGrid(cats);
          },
        }),
      ),
    );
  }

  renderGrid(cats) {
    const cat = cats.find((c) => c.id === this.category) || cats[0];
    this.title.textContent = cat.name;
    const rows = [];
    for (let i = 0; i < cat.list.length; i += COLS) {
      rows.push(
        h('div', { role: 'row', class: 'emoji-row' },
          cat.list.slice(i, i + COLS).map((e, j) =>
            h('button', {
              type: 'button',
              role: 'gridcell',
              class: 'emoji-btn',
              testid: 'emoji',
              dataset: { emoji: e },
              'aria-label': e,
              tabIndex: i + j === 0 ? 0 : -1,
              text: e,
              onclick: () => {
                rememberEmoji(e);
                this.onPick(e);
              },
            }),
          ),
        ),
      );
    }
    this.grid.replaceChildren(...rows);
    this.grid.scrollTop = 0;
  }

  gridKey(e) {
    const buttons = [...this.grid.querySelectorAll('button')];
    const i = buttons.indexOf(document.activeElement);
    if (i < 0) return;
    let next = null;
    if (e.key === 'ArrowRight') next = i + 1;
    else if (e.key === 'ArrowLeft') next = i - 1;
    else if (e.key === 'ArrowDown') next = i + COLS;
    else if (e.key === 'ArrowUp') next = i - COLS;
    else if (e.key === 'Home') next = 0;
    else if (e.key === 'End') next = buttons.length - 1;
    if (next == null) return;
    e.preventDefault();
    next = Math.max(0, Math.min(buttons.length - 1, next));
    buttons[i].tabIndex = -1;
    buttons[next].tabIndex = 0;
    buttons[next].focus();
  }
}
