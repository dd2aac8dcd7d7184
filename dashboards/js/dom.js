// Building the page without innerHTML: every text goes through textContent, so nothing the
// API returns can become markup. Inline style attributes are forbidden by the page's
// Content-Security-Policy; `style` here is applied through the CSSOM, which is allowed.

const SVG_NS = 'http://www.w3.org/2000/svg';

function apply(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.setAttribute('class', Array.isArray(value) ? value.filter(Boolean).join(' ') : value);
    else if (key === 'text') el.textContent = value;
    else if (key === 'style') Object.assign(el.style, value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'value' && 'value' in el) el.value = value;
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** An HTML element: h('button', {class: 'primary', onclick}, 'text', child, ...). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

/** An SVG element (charts, icons). */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

/** Replace the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A short message in the corner that screen readers announce. */
export function toast(message, kind = 'info', ms = 5000) {
  const box = document.getElementById('toasts');
  const item = h('div', {class: ['toast', `toast-${kind}`], role: kind === 'error' ? 'alert' : null}, message);
  box.append(item);
  setTimeout(() => item.remove(), ms);
}

/** A modal dialog (native <dialog>: focus is held inside, Escape closes it). Resolves with
 * the form's values when submitted, or null when cancelled. */
export function dialog({title, body, submit, cancel, danger = false}) {
  return new Promise((resolve) => {
    const form = h('form', {method: 'dialog', class: 'dialog-form'},
      h('h2', {class: 'dialog-title'}, title),
      body,
      h('div', {class: 'dialog-actions'},
        h('button', {type: 'button', class: 'secondary', value: 'cancel', onclick: () => { el.close('cancel'); }}, cancel),
        h('button', {type: 'submit', class: danger ? 'danger' : 'primary', value: 'ok'}, submit)));
    const el = h('dialog', {class: 'dialog', 'aria-label': title}, form);
    let values = null;
    form.addEventListener('submit', (event) => {
      if (!form.checkValidity()) { event.preventDefault(); return; }
      values = Object.fromEntries(new FormData(form).entries());
    });
    el.addEventListener('close', () => { el.remove(); resolve(el.returnValue === 'ok' ? values : null); });
    document.body.append(el);
    el.showModal();
    const first = form.querySelector('input, select, textarea');
    if (first) first.focus();
  });
}
