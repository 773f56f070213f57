// The audit view (#/audit?actor=&entity=&type=): for a holder of an auditor
// or admin token, the hash chain's check and the event timeline. The token
// is taken here and kept in the tab's sessionStorage only (api.js).

import { ApiError, get, getToken, setToken } from '../api.js';
import { errorBox, h, main, setTitle } from '../dom.js';
import { formatDateTime, parseTime } from '../format.js';
import { hashFor } from '../links.js';
import { forgetSeqTimes, rememberSeqTime, setEventsReadable } from '../event_log.js';

const EVENT_TYPES = [
  'unit.created', 'unit.renamed', 'unit.moved', 'unit.retired', 'unit.email_changed',
  'cycle.created', 'cycle.changed', 'cycle.closed', 'cycle.reopened', 'objective.created',
  'objective.retitled', 'objective.described', 'objective.owner_changed',
  'objective.alignment_set', 'objective.archived', 'objective.restored', 'objective.reviewed',
  'key_result.added', 'key_result.title_changed', 'key_result.start_changed',
  'key_result.target_changed', 'key_result.unit_changed', 'key_result.weight_changed',
  'key_result.owner_changed', 'key_result.metric_changed', 'key_result.removed',
  'check_in.recorded', 'check_in.corrected', 'comment.added', 'log.signing_key',
  'webhook.registered', 'webhook.removed', 'webhook.disabled', 'subject.erased',
];

// Draws the view for route `r`; `alive()` is false once the page moved on;
// nav.reload() draws the current view again (after the token changed).
export async function auditView(r, alive, nav) {
  setTitle('Audit');
  const root = main();
  root.replaceChildren(h('h1', {}, 'Audit'), tokenForm(nav));
  if (!getToken()) {
    root.append(h('p', {}, 'Paste a token to see the event timeline and the chain check.'));
    return;
  }
  const p = r.params;
  const filters = { actor: p.get('actor') || '', entity: p.get('entity') || '', type: p.get('type') || '' };
  const verifyBox = h('section', { id: 'verify', class: 'verify', 'aria-labelledby': 'verify-heading', 'aria-live': 'polite' },
    h('h2', { id: 'verify-heading' }, 'Chain'), h('p', {}, 'Verifying…'));
  const timeline = eventTimeline(filters, alive);
  root.append(verifyBox, timeline.section);
  // The chain check and the first page in parallel.
  const verifying = verifyChain(verifyBox, alive, nav);
  await Promise.all([timeline.loadPage(), verifying]);
}

// The token field, "Use token" and, when a token is set, "Forget token".
function tokenForm(nav) {
  const token = getToken();
  const tokenInput = h('input', {
    id: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', value: '',
    placeholder: token ? 'a token is set for this tab' : 'okr_…', 'aria-describedby': 'token-hint',
  });
  const use = (e) => {
    e.preventDefault();
    const value = tokenInput.value.trim();
    if (!value) return;
    setToken(value);
    setEventsReadable(null);
    forgetSeqTimes();
    tokenInput.value = '';
    nav.reload();
  };
  const forget = () => {
    setToken('');
    setEventsReadable(null);
    nav.reload();
  };
  return h('form', { class: 'token-form', onsubmit: use },
    h('div', { class: 'field grow' },
      h('label', { for: 'token' }, 'Bearer token'),
      tokenInput,
      h('span', { id: 'token-hint', class: 'hint' }, 'Kept in this browser tab only (sessionStorage) and sent only to this okrd. Audit reads need the auditor or admin role.')),
    h('div', { class: 'field buttons' },
      h('button', { type: 'submit' }, 'Use token'),
      token ? h('button', { type: 'button', id: 'forget-token', onclick: forget }, 'Forget token') : null));
}

// Fills `box` with GET /v1/audit/verify's answer, or why it failed.
function verifyChain(box, alive, nav) {
  return get('v1/audit/verify').then((v) => {
    if (!alive()) return;
    box.replaceChildren(h('h2', { id: 'verify-heading' }, 'Chain'),
      h('p', { class: `chain ${v.ok ? 'ok' : 'broken'}`, 'data-ok': v.ok },
        h('strong', {}, v.ok ? 'Verified: the hash chain is intact.' : `Broken at seq ${v.first_bad_seq}: ${v.problem}`)),
      h('dl', { class: 'facts' },
        h('div', {}, h('dt', {}, 'Events'), h('dd', {}, String(v.events))),
        h('div', {}, h('dt', {}, 'Head hash'), h('dd', {}, h('code', { class: 'hash' }, v.head_hash)))),
      h('button', { type: 'button', onclick: () => nav.reload() }, 'Verify again'));
  }).catch((err) => {
    if (!alive()) return;
    box.replaceChildren(h('h2', { id: 'verify-heading' }, 'Chain'), errorBox(err, 'Verifying the chain failed'));
  });
}

// The filters form, the events table and "Load more"; `loadPage()` reads
// the next 200 events that match `filters`.
function eventTimeline(filters, alive) {
  const body = h('tbody');
  const more = h('button', { type: 'button', id: 'more-events', hidden: true }, 'Load more');
  const count = h('p', { class: 'summary', 'aria-live': 'polite' });
  const section = h('section', { 'aria-labelledby': 'events-heading' },
    h('h2', { id: 'events-heading' }, 'Event timeline'),
    filterForm(filters),
    count,
    h('div', { class: 'table-wrap' }, h('table', { class: 'events' },
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col', class: 'num' }, 'Seq'), h('th', { scope: 'col' }, 'Recorded'),
        h('th', { scope: 'col' }, 'Actor'), h('th', { scope: 'col' }, 'Type'), h('th', { scope: 'col' }, 'Entity'),
        h('th', { scope: 'col' }, 'Reason'), h('th', { scope: 'col' }, 'Data'))),
      body)),
    more);
  const filtered = filters.actor || filters.entity || filters.type;
  let after = null;
  let shown = 0;
  const loadPage = async () => {
    more.disabled = true;
    try {
      const page = await get('v1/events', { ...filters, after, limit: 200 });
      setEventsReadable(true);
      if (!alive()) return;
      for (const e of page.items) {
        rememberSeqTime(e.seq, parseTime(e.recorded_at));
        body.append(eventRow(e));
      }
      shown += page.items.length;
      after = page.next;
      more.hidden = !page.next;
      count.textContent = `${shown} event${shown === 1 ? '' : 's'}${page.next ? ' so far' : ''}${filtered ? ' matching the filter' : ''} (head seq ${page.as_of_seq}).`;
    } catch (err) {
      if (!alive()) return;
      count.replaceChildren(errorBox(err, 'Reading the events failed'));
      // Only a refusal of the token means its audit reads are refused; a
      // bad filter in the address (400) says nothing about the token.
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
        setEventsReadable(false);
      }
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener('click', loadPage);
  return { section, loadPage };
}

// Actor, entity and type; "Filter" puts them in the address.
function filterForm(filters) {
  const actor = h('input', { id: 'f-actor', name: 'actor', value: filters.actor, autocomplete: 'off' });
  const entity = h('input', { id: 'f-entity', name: 'entity', value: filters.entity, autocomplete: 'off' });
  const type = h('select', { id: 'f-type', name: 'type' },
    h('option', { value: '' }, 'any type'),
    EVENT_TYPES.map((t) => h('option', { value: t, selected: t === filters.type }, t)));
  return h('form', { class: 'controls filters', onsubmit: (e) => {
    e.preventDefault();
    location.hash = hashFor('audit', '', { actor: actor.value.trim(), entity: entity.value.trim(), type: type.value });
  } },
    h('div', { class: 'field' }, h('label', { for: 'f-actor' }, 'Actor'), actor),
    h('div', { class: 'field' }, h('label', { for: 'f-entity' }, 'Entity id'), entity),
    h('div', { class: 'field' }, h('label', { for: 'f-type' }, 'Type'), type),
    h('div', { class: 'field buttons' },
      h('button', { type: 'submit' }, 'Filter'),
      h('a', { class: 'button', href: '#/audit' }, 'Clear')));
}

function eventRow(e) {
  return h('tr', { 'data-seq': e.seq, 'data-type': e.type },
    h('td', { class: 'num' }, String(e.seq)),
    h('td', { class: 'nowrap' }, formatDateTime(parseTime(e.recorded_at))),
    h('td', {}, e.actor),
    h('td', {}, h('code', {}, e.type)),
    h('td', {}, e.type.startsWith('key_result.') ? h('a', { href: hashFor('kr', e.entity) }, e.entity) : e.entity),
    h('td', {}, e.reason || ''),
    h('td', {}, e.data ? h('details', {}, h('summary', {}, 'data'), h('pre', {}, JSON.stringify(e.data, null, 1))) : ''));
}
