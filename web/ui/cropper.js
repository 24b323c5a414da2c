// Picks a picture, lets the person frame a square of it (drag or arrow keys to move, slider
// or +/- to zoom), shows a preview of the result, and only then uploads it. Cropping runs
// on a canvas in the browser, so the server receives a small square PNG.

import { h, icon } from '../dom.js';
import { openDialog } from './dialog.js';

const STAGE = 288; // CSS pixels of the framing area
const OUT = 384; // pixels of the uploaded square (the server stores 256)
let inputSeq = 0;

export function openCropper({ title, testid = 'cropper', onUpload }) {
  const inputId = `crop-file-${++inputSeq}`;
  const file = h('input', { type: 'file', id: inputId, class: 'sr-only', accept: 'image/png,image/jpeg,image/webp,image/gif', testid: 'avatar-file' });
  const chooser = h('label', { class: 'btn file-btn', for: inputId }, icon('camera'), h('span', { text: 'Choose a picture…' }));
  const canvas = h('canvas', { class: 'crop-stage', tabindex: '0', role: 'img', 'aria-label': 'Framing area. Drag or use the arrow keys to move the picture; plus and minus zoom.', testid: 'crop-stage' });
  const zoom = h('input', { type: 'range', min: '1', max: '4', step: '0.01', value: '1', 'aria-label': 'Zoom', testid: 'crop-zoom', disabled: true });
  const preview = h('img', { class: 'crop-preview', alt: 'Preview of the new picture', testid: 'crop-preview', hidden: true });
  const previewNote = h('p', { class: 'muted small', text: 'Choose a picture to see a preview.' });
  const upload = h('button', { type: 'button', class: 'btn primary', testid: 'crop-upload', text: 'Upload', disabled: true });
  const cancel = h('button', { type: 'button', class: 'btn', text: 'Cancel' });

  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(STAGE * dpr);
  canvas.height = Math.round(STAGE * dpr);
  const g = canvas.getContext('2d');
  let img = null;
  let scale = 1;
  let base = 1;
  let ox = 0;
  let oy = 0;
  let previewUrl = null;
  let previewTimer = null;
  let closed = false;

  function clamp() {
    const dw = img.width * scale;
    const dh = img.height * scale;
    ox = Math.min(0, Math.max(STAGE - dw, ox));
    oy = Math.min(0, Math.max(STAGE - dh, oy));
  }

  function draw() {
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, STAGE, STAGE);
    if (!img) return;
    g.drawImage(img, ox, oy, img.width * scale, img.height * scale);
    // Darken what falls outside the round avatar, to show how it will look.
    g.save();
    g.fillStyle = 'rgba(0,0,0,0.45)';
    g.beginPath();
    g.rect(0, 0, STAGE, STAGE);
    g.arc(STAGE / 2, STAGE / 2, STAGE / 2 - 2, 0, Math.PI * 2, true);
    g.fill('evenodd');
    g.strokeStyle = 'rgba(255,255,255,0.9)';
    g.lineWidth = 2;
    g.beginPath();
    g.arc(STAGE / 2, STAGE / 2, STAGE / 2 - 2, 0, Math.PI * 2);
    g.stroke();
    g.restore();
    clearTimeout(previewTimer);
    previewTimer = setTimeout(renderPreview, 120);
  }

  function output() {
    const out = document.createElement('canvas');
    out.width = OUT;
    out.height = OUT;
    const k = OUT / STAGE;
    const c = out.getContext('2d');
    c.imageSmoothingQuality = 'high';
    c.drawImage(img, ox * k, oy * k, img.width * scale * k, img.height * scale * k);
    return out;
  }

  function renderPreview() {
    if (!img || closed) return;
    output().toBlob((blob) => {
      if (!blob || closed) return;
      if (previewUrl) URL.revokeObjectURL(previewUrl);
      previewUrl = URL.createObjectURL(blob);
      preview.src = previewUrl;
      preview.hidden = false;
      previewNote.textContent = 'This is how it will look.';
    }, 'image/png');
  }

  function setZoom(z) {
    const cx = (STAGE / 2 - ox) / scale;
    const cy = (STAGE / 2 - oy) / scale;
    scale = base * z;
    ox = STAGE / 2 - cx * scale;
    oy = STAGE / 2 - cy * scale;
    clamp();
    draw();
  }

  file.addEventListener('change', async () => {
    const f = file.files && file.files[0];
    if (!f) return;
    d.error('');
    if (f.size > 40 * 1024 * 1024) {
      d.error('That file is too large to edit here; pick one under 40 MB.');
      return;
    }
    try {
      img = await createImageBitmap(f);
    } catch {
      d.error('That file is not a picture this browser can read (use PNG, JPEG, WebP or GIF).');
      return;
    }
    base = Math.max(STAGE / img.width, STAGE / img.height);
    scale = base;
    zoom.value = '1';
    zoom.disabled = false;
    ox = (STAGE - img.width * scale) / 2;
    oy = (STAGE - img.height * scale) / 2;
    upload.disabled = false;
    draw();
    canvas.focus();
  });

  zoom.addEventListener('input', () => setZoom(Number(zoom.value)));

  let drag = null;
  canvas.addEventListener('pointerdown', (e) => {
    if (!img) return;
    drag = { x: e.clientX, y: e.clientY, ox, oy };
    canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!drag) return;
    ox = drag.ox + (e.clientX - drag.x);
    oy = drag.oy + (e.clientY - drag.y);
    clamp();
    draw();
  });
  canvas.addEventListener('pointerup', () => { drag = null; });
  canvas.addEventListener('pointercancel', () => { drag = null; });
  canvas.addEventListener('wheel', (e) => {
    if (!img) return;
    e.preventDefault();
    const z = Math.min(4, Math.max(1, Number(zoom.value) * (e.deltaY < 0 ? 1.08 : 1 / 1.08)));
    zoom.value = String(z);
    setZoom(z);
  }, { passive: false });
  canvas.addEventListener('keydown', (e) => {
    if (!img) return;
    const step = e.shiftKey ? 40 : 10;
    const moves = { ArrowLeft: [step, 0], ArrowRight: [-step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
    if (moves[e.key]) {
      e.preventDefault();
      ox += moves[e.key][0];
      oy += moves[e.key][1];
      clamp();
      draw();
    } else if (e.key === '+' || e.key === '=' || e.key === '-') {
      e.preventDefault();
      const z = Math.min(4, Math.max(1, Number(zoom.value) + (e.key === '-' ? -0.1 : 0.1)));
      zoom.value = String(z);
      setZoom(z);
    }
  });

  upload.addEventListener('click', async () => {
    if (!img) return;
    upload.disabled = true;
    d.error('');
    try {
      const blob = await new Promise((resolve) => output().toBlob(resolve, 'image/png'));
      if (!blob) throw new Error('The picture could not be prepared; try another one.');
      await onUpload(blob);
      d.close();
    } catch (e) {
      d.error(e.message);
      upload.disabled = false;
    }
  });

  const d = openDialog({
    title,
    testid,
    wide: true,
    body: h('div', { class: 'cropper' },
      h('div', { class: 'crop-left' }, canvas, h('label', { class: 'zoom-row' }, h('span', { text: 'Zoom' }), zoom)),
      h('div', { class: 'crop-right' }, chooser, file, h('div', { class: 'preview-box' }, preview, previewNote),
        h('p', { class: 'muted small', text: 'PNG, JPEG, WebP or GIF. Drag to frame it; the square is uploaded and shown as a circle.' }))),
    footer: [cancel, upload],
    onClose: () => {
      closed = true;
      clearTimeout(previewTimer);
      if (previewUrl) URL.revokeObjectURL(previewUrl);
      if (img && img.close) img.close();
      img = null;
    },
  });
  cancel.addEventListener('click', () => d.close());
  draw();
  chooser.focus();
  return d;
}
