// Builds DOM nodes. User text only ever enters the page as text nodes or attribute values,
// never as markup: there is no innerHTML anywhere in the client, so a message such as
// `<img src=x onerror=…>` stays text. Inline styles are refused too (the page's CSP would
// block them); geometry that must be computed is set through `el.style.prop` instead.

const PROPS = new Set(['value', 'checked', 'disabled', 'hidden', 'selected', 'indeterminate', 'multiple']);

/** `h('button', {class: 'x', onclick: f, 'aria-label': 'Send'}, child, 'text', [more])` */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  append(el, children);
  return el;
}

export function setProps(el, props) {
  if (!props) return el;
  for (const [k, v] of Object.entries(props)) {
    if (v == null || v === false) continue;
    if (k === 'style') throw new Error('inline styles are not allowed by the CSP; use a class');
    if (k === 'class') el.className = Array.isArray(v) ? v.filter(Boolean).join(' ') : v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'testid') el.dataset.testid = v;
    else if (k === 'dataset') for (const [dk, dv] of Object.entries(v)) { if (dv != null) el.dataset[dk] = dv; }
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (PROPS.has(k)) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';

// Stroke icons in the 24-unit grid. "c:x,y,r" is a circle, anything else a path.
const ICONS = {
  send: ['M22 2L11 13', 'M22 2l-7 20-4-9-9-4 20-7z'],
  smile: ['c:12,12,10', 'M8 14s1.5 2 4 2 4-2 4-2', 'M9 9h.01', 'M15 9h.01'],
  search: ['c:11,11,7', 'M21 21l-4.35-4.35'],
  plus: ['M12 5v14', 'M5 12h14'],
  bell: ['M18 8A6 6 0 0 0 6 8c0 7-3 9-3 9h18s-3-2-3-9', 'M13.73 21a2 2 0 0 1-3.46 0'],
  logout: ['M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4', 'M16 17l5-5-5-5', 'M21 12H9'],
  back: ['M19 12H5', 'M12 19l-7-7 7-7'],
  users: ['M17 21v-2a4 4 0 0 0-4-4H5a4 4 0 0 0-4 4v2', 'c:9,7,4', 'M23 21v-2a4 4 0 0 0-3-3.87', 'M16 3.13a4 4 0 0 1 0 7.75'],
  userPlus: ['M16 21v-2a4 4 0 0 0-4-4H5a4 4 0 0 0-4 4v2', 'c:8.5,7,4', 'M20 8v6', 'M23 11h-6'],
  check: ['M20 6L9 17l-5-5'],
  checks: ['M17 6L6.5 16.5 2 12', 'M22 6L11.5 16.5 10 15'],
  clock: ['c:12,12,9', 'M12 7v5l3 2'],
  alert: ['c:12,12,10', 'M12 8v4', 'M12 16h.01'],
  close: ['M18 6L6 18', 'M6 6l12 12'],
  info: ['c:12,12,10', 'M12 16v-4', 'M12 8h.01'],
  palette: ['M12 2.69l5.66 5.66a8 8 0 1 1-11.31 0z'],
  camera: ['M23 19a2 2 0 0 1-2 2H3a2 2 0 0 1-2-2V8a2 2 0 0 1 2-2h4l2-3h6l2 3h4a2 2 0 0 1 2 2z', 'c:12,13,4'],
  chat: ['M21 11.5a8.38 8.38 0 0 1-.9 3.8 8.5 8.5 0 0 1-7.6 4.7 8.38 8.38 0 0 1-3.8-.9L3 21l1.9-5.7a8.38 8.38 0 0 1-.9-3.8 8.5 8.5 0 0 1 4.7-7.6 8.38 8.38 0 0 1 3.8-.9h.5a8.48 8.48 0 0 1 8 8v.5z'],
  retry: ['M1 4v6h6', 'M3.51 15a9 9 0 1 0 2.13-9.36L1 10'],
  undo: ['M3 7v6h6', 'M21 17a9 9 0 0 0-9-9 9 9 0 0 0-6 2.3L3 13'],
  user: ['M20 21v-2a4 4 0 0 0-4-4H8a4 4 0 0 0-4 4v2', 'c:12,7,4'],
  settings: ['c:12,12,3', 'M19.4 15a1.65 1.65 0 0 0 .33 1.82l.06.06a2 2 0 1 1-2.83 2.83l-.06-.06a1.65 1.65 0 0 0-1.82-.33 1.65 1.65 0 0 0-1 1.51V21a2 2 0 1 1-4 0v-.09A1.65 1.65 0 0 0 9 19.4a1.65 1.65 0 0 0-1.82.33l-.06.06a2 2 0 1 1-2.83-2.83l.06-.06A1.65 1.65 0 0 0 4.68 15a1.65 1.65 0 0 0-1.51-1H3a2 2 0 1 1 0-4h.09A1.65 1.65 0 0 0 4.6 9a1.65 1.65 0 0 0-.33-1.82l-.06-.06a2 2 0 1 1 2.83-2.83l.06.06A1.65 1.65 0 0 0 9 4.68a1.65 1.65 0 0 0 1-1.51V3a2 2 0 1 1 4 0v.09a1.65 1.65 0 0 0 1 1.51 1.65 1.65 0 0 0 1.82-.33l.06-.06a2 2 0 1 1 2.83 2.83l-.06.06A1.65 1.65 0 0 0 19.4 9a1.65 1.65 0 0 0 1.51 1H21a2 2 0 1 1 0 4h-.09a1.65 1.65 0 0 0-1.51 1z'],
};

/** A decorative icon (hidden from assistive technology; the button carries the label). */
export function icon(name, cls = '') {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', `icon ${cls}`.trim());
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  for (const d of ICONS[name] || []) {
    let shape;
    if (d.startsWith('c:')) {
      const [cx, cy, r] = d.slice(2).split(',');
      shape = document.createElementNS(SVG, 'circle');
      shape.setAttribute('cx', cx);
      shape.setAttribute('cy', cy);
      shape.setAttribute('r', r);
    } else {
      shape = document.createElementNS(SVG, 'path');
      shape.setAttribute('d', d);
    }
    svg.append(shape);
  }
  return svg;
}

/** A real button holding an icon, labelled for screen readers and with a tooltip. */
export function iconButton(name, label, props = {}) {
  const { class: cls, ...rest } = props;
  return h('button', { type: 'button', 'aria-label': label, title: label, ...rest, class: ['icon-btn', cls] }, icon(name));
}

export function clear(el) {
  el.replaceChildren();
  return el;
}
