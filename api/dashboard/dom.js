// Small DOM helpers every view uses: building elements, the page's main
// region, announcements for screen readers, and error boxes.

import { ApiError } from './api.js';

// An element `tag` with `attrs` and `children` (nodes, text, nested arrays;
// null, undefined and false are skipped). `text` sets the text, `class` the
// class, `on…` with a function adds a listener.
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    // aria-* and data-* take "true"/"false"; other booleans are present or absent.
    if (typeof value === 'boolean' && (key.startsWith('aria-') || key.startsWith('data-'))) {
      node.setAttribute(key, String(value));
      continue;
    }
    if (value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, '');
    else node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

// Appends `children` (as h takes them) to `node`; returns `node`.
export function append(node, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// The region each view draws into (index.html's <main>).
export const main = () => document.getElementById('main');

// Says `text` politely to screen readers (the page's live region).
export function announce(text) {
  const region = document.getElementById('announce');
  if (region) region.textContent = text;
}

export function setTitle(text) {
  document.title = `${text} · okrd`;
}

// An alert saying that `what` failed because of `err`; a 401 points to the
// Audit page, where a token can be given, and a 403 names the role.
export function errorBox(err, what) {
  const box = h('div', { class: 'error', role: 'alert' });
  let message = err instanceof ApiError ? err.message : String(err && err.message ? err.message : err);
  if (err instanceof ApiError && err.status === 401) {
    append(box, [
      h('p', {}, `${what}: okrd asks for a token (${message}).`),
      h('p', {}, 'Paste one on the ', h('a', { href: '#/audit' }, 'Audit'), ' page; it is kept for this tab only.'),
    ]);
    return box;
  }
  if (err instanceof ApiError && err.status === 403) message = `${message} (this token's role may not read it)`;
  append(box, h('p', {}, `${what}: ${message}`));
  return box;
}

// `fn` called once calls have paused for `ms`.
export function debounce(fn, ms) {
  let timer = 0;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

let uid = 0;
// A fresh element id for this page ("prefix-7"), to tie labels and controls.
export const nextId = (prefix) => `${prefix}-${++uid}`;
