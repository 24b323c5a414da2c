// Skins. Each theme is a set of CSS custom properties (themes.css) selected by
// <html data-theme>. The choice is a user setting (PUT /me/settings {theme}), so it follows
// the user to every browser: it is applied on load from GET /me and live on
// `settings.updated`. The last one is also cached locally so a reload does not flash.

import { h, icon } from '../dom.js';
import { api } from '../api.js';
import { prefs } from '../prefs.js';

export const THEMES = [
  { id: 'light', name: 'Light', hint: 'Clean and bright' },
  { id: 'dark', name: 'Dark', hint: 'Easy on the eyes at night' },
  { id: 'terminal', name: 'Terminal', hint: 'Green phosphor on black' },
  { id: 'sakura', name: 'Sakura', hint: 'Cherry blossom pastels' },
];

export function systemTheme() {
  return window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

/** Applies a theme name; unknown names (from a newer client) fall back to the system's. */
export function applyTheme(id) {
  const theme = THEMES.some((t) => t.id === id) ? id : systemTheme();
  document.documentElement.dataset.theme = theme;
  prefs.setTheme(theme);
  return theme;
}

export function applySettings(settings) {
  applyTheme(settings && typeof settings.theme === 'string' ? settings.theme : null);
}

/** Saves the choice for the user (all their devices get `settings.updated`). */
export async function chooseTheme(id) {
  applyTheme(id);
  await api.put('/me/settings', { theme: id });
}

/** Small preview of a theme's colours for pickers. */
export function swatch(id) {
  return h('span', { class: 'swatch', dataset: { swatch: id }, 'aria-hidden': 'true' }, h('span'), h('span'), h('span'));
}

/**
 * A popup menu of themes under `anchor`. Arrow keys move, Enter/Space choose, Escape
 * closes and returns focus to the anchor.
 */
export function openThemeMenu(anchor, onError) {
  const current = document.documentElement.dataset.theme;
  const items = THEMES.map((t) =>
    h(
      'button',
      {
        type: 'button',
        role: 'menuitemradio',
        class: 'menu-item',
        'aria-checked': String(t.id === current),
        testid: `theme-${t.id}`,
        onclick: async () => {
          close();
          try {
            await chooseTheme(t.id);
          } catch (e) {
            onError(e.message);
          }
        },
      },
      swatch(t.id),
      h('span', { class: 'menu-text' }, h('span', { class: 'menu-title', text: t.name }), h('span', { class: 'menu-hint', text: t.hint })),
      t.id === current ? icon('check', 'menu-check') : null,
    ),
  );
  const menu = h('div', { class: 'menu', role: 'menu', 'aria-label': 'Theme', testid: 'theme-menu' }, items);
  const r = anchor.getBoundingClientRect();
  menu.style.top = `${Math.round(r.bottom + 6)}px`;
  menu.style.left = `${Math.round(Math.max(8, Math.min(window.innerWidth - 248, r.left)))}px`;
  document.body.append(menu);
  anchor.setAttribute('aria-expanded', 'true');
  const focusAt = (i) => items[(i + items.length) % items.length].focus();
  focusAt(Math.max(0, THEMES.findIndex((t) => t.id === current)));
  function onKey(e) {
    const i = items.indexOf(document.activeElement);
    if (e.key === 'ArrowDown') { e.preventDefault(); focusAt(i + 1); }
    else if (e.key === 'ArrowUp') { e.preventDefault(); focusAt(i - 1); }
    else if (e.key === 'Home') { e.preventDefault(); focusAt(0); }
    else if (e.key === 'End') { e.preventDefault(); focusAt(items.length - 1); }
    else if (e.key === 'Escape' || e.key === 'Tab') { e.preventDefault(); close(); anchor.focus(); }
  }
  function onDown(e) {
    if (!menu.contains(e.target) && e.target !== anchor && !anchor.contains(e.target)) close();
  }
  menu.addEventListener('keydown', onKey);
  setTimeout(() => document.addEventListener('mousedown', onDown), 0);
  function close() {
    menu.remove();
    anchor.setAttribute('aria-expanded', 'false');
    document.removeEventListener('mousedown', onDown);
  }
  return close;
}
