// okrd's read-only dashboard. Plain ES modules, no build step, no runtime
// dependencies: it reads okrd's public HTTP API and draws with HTML and SVG.
// This module starts the page and routes the address's hash to a view;
// docs/DASHBOARD.md maps the other modules.
//
// Routes (hash based, so any static server can serve it):
//   #/cascade?cycle=&as_of=&from=&to=&q=   units → objectives → key results
//   #/kr/ID?as_of=                         one key result's check-ins chart
//   #/review/CYCLE                         the printable review of a cycle
//   #/audit?actor=&entity=&type=           the event timeline, for a token holder

import { ApiError } from './api.js';
import { errorBox, h, main } from './dom.js';
import { parseHash } from './links.js';
import { stopFollowing } from './live.js';
import { auditView } from './views/audit.js';
import { cascadeView } from './views/cascade.js';
import { keyResultView } from './views/key_result.js';
import { reviewView } from './views/review.js';

// Each view is async (r, alive, nav): r the parsed address, alive() false
// once another route started, nav what a view may ask of the router.
const VIEWS = { cascade: cascadeView, kr: keyResultView, review: reviewView, audit: auditView };

let generation = 0; // counts routes: only the latest one draws
// Whether the next route follows the user (then focus moves to the new
// heading) rather than the page's start or a redirect.
let routeChangedByUser = false;

const nav = {
  reload: () => route(),
  // Goes to `hash` in place of the current address, keeping focus where it is.
  redirect: (hash) => {
    routeChangedByUser = false;
    location.replace(hash);
  },
};

// Draws the view the address names into <main>.
async function route() {
  const r = parseHash();
  if (!r) return;
  const my = ++generation;
  stopFollowing(); // a view follows changes only while it is on screen
  markCurrentNav(r.view);
  const root = main();
  root.setAttribute('aria-busy', 'true');
  root.replaceChildren(h('p', { class: 'loading' }, 'Loading…'));
  const view = VIEWS[r.view];
  try {
    if (!view) {
      root.replaceChildren(h('h1', {}, 'Not found'), h('p', {}, 'No such page. ', h('a', { href: '#/cascade' }, 'Go to the cascade.')));
    } else {
      await view(r, () => my === generation, nav);
    }
  } catch (err) {
    if (my !== generation) return;
    const heading = err instanceof ApiError && err.status === 401 ? 'A token is needed'
      : err instanceof ApiError && err.status === 404 ? 'Not found' : 'Something went wrong';
    root.replaceChildren(h('h1', {}, heading), errorBox(err, 'Loading this page failed'));
  } finally {
    if (my === generation) root.removeAttribute('aria-busy');
  }
  if (my === generation && routeChangedByUser) focusHeading();
  routeChangedByUser = true;
}

// aria-current on the navigation link of `view` (a key result is in the cascade).
function markCurrentNav(view) {
  for (const link of document.querySelectorAll('[data-nav]')) {
    const current = link.dataset.nav === view || (link.dataset.nav === 'cascade' && view === 'kr');
    if (current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

function focusHeading() {
  const heading = main().querySelector('h1');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: false });
  }
}

function start() {
  const skip = document.querySelector('.skip');
  if (skip) {
    skip.addEventListener('click', (e) => {
      e.preventDefault();
      const heading = main().querySelector('h1') || main();
      heading.setAttribute('tabindex', '-1');
      heading.focus();
    });
  }
  window.addEventListener('hashchange', route);
  if (!location.hash || !location.hash.startsWith('#/')) {
    history.replaceState(null, '', '#/cascade');
  }
  route();
}

start();
