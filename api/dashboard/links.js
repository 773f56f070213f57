// The dashboard's addresses: "#/VIEW/ARG?params", so that every view can be
// bookmarked and any static server can serve the page.

// The view, argument and parameters of the current address; null when the
// hash is not one of ours.
export function parseHash() {
  const hash = location.hash || '#/cascade';
  if (!hash.startsWith('#/')) return null;
  const [path, query = ''] = hash.slice(2).split('?');
  const parts = path.split('/').map((p) => decodeURIComponent(p));
  return { view: parts[0] || 'cascade', arg: parts.slice(1).join('/'), params: new URLSearchParams(query) };
}

// The address of `view` with `arg`; empty parameters are left out.
export function hashFor(view, arg, params = {}) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') query.set(k, v);
  const q = query.toString();
  return `#/${view}${arg ? `/${encodeURIComponent(arg)}` : ''}${q ? `?${q}` : ''}`;
}

// Updates the address without a new history entry or a re-render.
export function replaceHash(view, arg, params) {
  history.replaceState(null, '', hashFor(view, arg, params));
}
