// The dashboard in a real browser against a real okrd.
//
// Starts okrd (OKRD_BINARY) with --demo on a fresh data directory and lets
// it serve its default dashboard, then drives Debian's Chromium through
// playwright-core. Screenshots of every view go to
// DASHBOARD_OUT/dashboard-screenshots/. The run at size starts a second
// okrd on a 50,000-objective log that okrctl imports (big_org.sh).
//
//   OKRD_BINARY=… DASHBOARD_OUT=… node --test dashboard.test.mjs
import { after, before, test as nodeTest } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

// DASHBOARD_PART picks a part of the file: "at size" (the tests named so)
// or "browser" (every other test); unset, every test runs. (Node 20's
// --test-name-pattern cannot leave tests out: a lookahead pattern matches
// the file's own name, and then every test runs.)
const part = process.env.DASHBOARD_PART ?? '';
function test(name, ...rest) {
  const sized = name.startsWith('at size');
  if ((part === 'browser' && sized) || (part === 'at size' && !sized)) return;
  nodeTest(name, ...rest);
}

const okrdBinary = process.env.OKRD_BINARY || process.argv[2];
const outDir = process.env.DASHBOARD_OUT || process.argv[3] || tmpdir();
const shots = path.join(outDir, 'dashboard-screenshots');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

let okrd;
let base;
let dataDir;
let profileDir;
let context;
let page;
const problems = []; // console errors, page errors, failed or foreign requests

// Starts okrd with the demo (and `extra` flags) on a fresh directory, or
// without the demo on `data` when given; sets okrd and dataDir unless `own`
// is given, which then gets them instead. An okrd not listening within
// `startMs` is killed, so a failed start leaves nothing running. It
// listens on `listen` (default: any free port of 127.0.0.1).
async function startOkrd(extra = [], own = null, data = null, startMs = 30_000, listen = '127.0.0.1:0') {
  const dir = data || mkdtempSync(path.join(tmpdir(), 'okrd-dashboard-data-'));
  const args = ['--data', dir, '--listen', listen, ...(data ? [] : ['--demo']), ...extra];
  if (process.env.DASHBOARD_DIR) args.push('--dashboard', process.env.DASHBOARD_DIR);
  const proc = spawn(okrdBinary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  if (own) Object.assign(own, { proc, dir });
  else [okrd, dataDir] = [proc, dir];
  let stderr = '';
  proc.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  return new Promise((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => {
      proc.removeAllListeners('exit');
      proc.kill('SIGKILL');
      reject(new Error(`okrd did not start in ${startMs / 1000} s\n${stdout}\n${stderr.slice(-2000)}`));
    }, startMs);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`okrd exited with ${code}\n${stderr.slice(-2000)}`));
    });
    proc.stdout.on('data', (chunk) => {
      stdout += chunk;
      const m = stdout.match(/okrd listening on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
}

async function api(pathAndQuery, token) {
  const res = await fetch(`${base}${pathAndQuery}`, token ? { headers: { Authorization: `Bearer ${token}` } } : {});
  assert.equal(res.status, 200, `GET ${pathAndQuery}`);
  return res.json();
}

// Saves a screenshot of `target` (default: the shared page) as `name`.png.
async function shot(name, target = page) {
  await target.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

function assertNoProblems(where) {
  assert.deepEqual(problems.splice(0), [], `problems in the browser during ${where}`);
}

async function go(hash) {
  await page.evaluate((h) => {
    location.hash = h;
  }, hash);
}

before(async () => {
  assert.ok(okrdBinary, 'set OKRD_BINARY (or pass the okrd path as the first argument)');
  mkdirSync(shots, { recursive: true });
  base = await startOkrd();
  profileDir = mkdtempSync(path.join(tmpdir(), 'okrd-dashboard-chromium-'));
  // launchPersistentContext is how playwright takes a fresh --user-data-dir.
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    viewport: { width: 1280, height: 900 },
  });
  page = context.pages()[0] || (await context.newPage());
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console.${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => {
    // The dashboard ends (aborts) the changes stream it follows whenever
    // the view or the cycle changes (live.js): that is no failure.
    if (r.failure()?.errorText === 'net::ERR_ABORTED' && new URL(r.url()).pathname === '/v1/changes/stream') return;
    problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
  });
  page.on('request', (r) => {
    const url = r.url();
    if (!url.startsWith(base) && !url.startsWith('data:') && !url.startsWith(`blob:${base}`)) problems.push(`request off okrd: ${url}`);
  });
});

after(async () => {
  if (context) await context.close().catch(() => {});
  if (okrd && okrd.exitCode === null) {
    okrd.removeAllListeners('exit');
    okrd.kill('SIGTERM');
    await new Promise((resolve) => {
      const t = setTimeout(() => {
        okrd.kill('SIGKILL');
        resolve();
      }, 5000);
      okrd.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }
  if (dataDir) removeData(dataDir);
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
});

test('the cascade shows the demo objectives with the API\'s progress', { timeout: 60_000 }, async () => {
  await page.goto(`${base}/`);
  await page.waitForSelector('#cascade-tree[data-as-of] [data-objective-id]');
  const cycle = await page.getAttribute('#cascade-tree', 'data-cycle');
  const asOf = Number(await page.getAttribute('#cascade-tree', 'data-as-of'));
  const { items, as_of_seq } = await api(`/v1/objectives?cycle=${cycle}&as_of=${asOf}`);
  assert.equal(as_of_seq, asOf);
  assert.ok(items.length >= 5, `the demo has objectives in ${cycle}`);
  for (const o of items) {
    const card = page.locator(`[data-objective-id="${o.id}"]`);
    await assert.doesNotReject(card.waitFor({ timeout: 5000 }), `objective ${o.id} is shown`);
    assert.equal(await card.locator('.objective-heading').innerText(), o.title);
    assert.equal(await card.locator('.objective-head .pct').innerText(), `${Math.round(o.progress * 100)}%`, `progress of ${o.id}`);
    for (const k of o.key_results) {
      const row = page.locator(`[data-kr-id="${k.id}"]`);
      assert.equal(await row.locator('.pct').innerText(), `${Math.round(k.progress * 100)}%`, `progress of ${k.id}`);
      assert.equal(Number(await row.getAttribute('data-target')), k.target);
      assert.equal(Number(await row.getAttribute('data-current')), k.current);
    }
  }
  // Every state is written out, not only coloured.
  const badges = await page.locator('.objective .status').allInnerTexts();
  assert.ok(badges.every((b) => ['On track', 'At risk', 'Off track'].includes(b.trim())), badges.join(','));
  await shot('cascade');

  // Search by an owner's name (Sam Okafor, unit p-3307) narrows the cascade.
  await page.fill('#search', 'okafor');
  await page.waitForFunction(() => document.querySelectorAll('[data-objective-id]').length === 1);
  assert.equal(await page.locator('[data-objective-id]').getAttribute('data-objective-id'), 'ta-grow-referrals');
  assert.match(page.url(), /q=okafor/);
  await page.fill('#search', '');
  await page.waitForFunction((n) => document.querySelectorAll('[data-objective-id]').length === n, items.length);

  // Collapse and expand with the keyboard.
  const toggle = page.locator('[data-objective-id="ops-one-hris"] .objective-heading button');
  assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
  await toggle.focus();
  await page.keyboard.press('Enter');
  assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
  assert.equal(await page.locator('[data-kr-id="kr-records-migrated"]').isVisible(), false);
  await page.keyboard.press('Space');
  assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
  assert.equal(await page.locator('[data-kr-id="kr-records-migrated"]').isVisible(), true);
  assertNoProblems('the cascade');
});

test('the time slider shows the target before it was moved, and the change between two marks', { timeout: 60_000 }, async () => {
  // The demo moves kr-engineers-hired's target in the previous quarter and,
  // from its fifth week on, kr-stay-interviews' in the current one: take the
  // latest, and show its cycle.
  const diff = await api('/v1/diff');
  const moved = diff.changed
    .filter((c) => c.field === 'target' && ['kr-stay-interviews', 'kr-engineers-hired'].includes(c.entity))
    .pop();
  assert.ok(moved, 'the demo moved a target');
  const kr = await api(`/v1/key-results/${moved.entity}`);
  const { cycle } = await api(`/v1/objectives/${kr.objective}`);
  if ((await page.getAttribute('#cascade-tree', 'data-cycle')) !== cycle) {
    await page.selectOption('#cycle', cycle);
    await page.waitForSelector(`#cascade-tree[data-cycle="${cycle}"] [data-kr-id="${moved.entity}"]`);
  }
  const row = () => page.locator(`[data-kr-id="${moved.entity}"]`);
  assert.equal(Number(await row().getAttribute('data-target')), moved.after);

  await page.locator('#as-of').fill(String(moved.seq - 1));
  await page.waitForSelector(`#cascade-tree[data-as-of="${moved.seq - 1}"]`);
  assert.equal(Number(await row().getAttribute('data-target')), moved.before);
  assert.equal(Number(await row().locator('.target').innerText()), moved.before);
  // The readout names the recorded time of that seq.
  await page.waitForSelector(`#as-of-time[data-seq="${moved.seq - 1}"]`);
  assert.match(await page.getAttribute('#as-of-time', 'data-time'), /^\d{4}-\d\d-\d\dT/);
  assert.match(page.url(), new RegExp(`as_of=${moved.seq - 1}`));
  await page.click('#set-from');

  await page.locator('#as-of').fill(String(moved.seq));
  await page.waitForSelector(`#cascade-tree[data-as-of="${moved.seq}"]`);
  assert.equal(Number(await row().getAttribute('data-target')), moved.after);
  await page.click('#set-to');
  await page.waitForSelector(`#diff [data-change="changed"][data-entity="${moved.entity}"][data-field="target"]`);
  await page.waitForSelector(`[data-kr-id="${moved.entity}"].changed`);
  assert.match(await row().locator('.badge.changed').innerText(), /target/);
  assert.equal(await page.locator('.kr.changed').count(), 1, 'only the moved key result changed in that one event');
  assert.equal(await page.locator('.mark').count(), 2);
  await shot('cascade-time-travel');

  // Back to the latest state.
  await page.click('#latest');
  await page.waitForSelector(`#cascade-tree[data-as-of="${diff.as_of_seq}"]`);
  // The slider answers the keyboard.
  await page.focus('#as-of');
  await page.keyboard.press('ArrowLeft');
  await page.keyboard.press('ArrowLeft');
  await page.waitForSelector(`#cascade-tree[data-as-of="${diff.as_of_seq - 2}"]`);
  await page.keyboard.press('End');
  await page.waitForSelector(`#cascade-tree[data-as-of="${diff.as_of_seq}"]`);
  assertNoProblems('time travel');
});

// The demo's editor (editor-5190, HR Operations) may record check-ins of
// this key result.
const LIVE_KR = 'kr-records-migrated';

// Records a check-in of `kr` with `value` on the okrd at `at`, as a client
// other than the dashboard would; okrd's answer ({seq, current, …}).
async function recordCheckIn(at, token, kr, value) {
  const res = await fetch(`${at}/v1/key-results/${kr}/check-ins`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ value, note: 'recorded by the dashboard test' }),
  });
  const text = await res.text();
  assert.equal(res.status, 201, `POST check-in of ${kr}: ${text}`);
  return JSON.parse(text);
}

// Waits until `p` shows key result `kr` with current value `value`.
async function waitForCurrent(p, kr, value, timeout = 20_000) {
  await p.waitForFunction(([id, v]) => {
    const row = document.querySelector(`[data-kr-id="${id}"]`);
    return row && Number(row.dataset.current) === v;
  }, [kr, value], { timeout });
}

// Marks the document, so that a reload or a navigation (which would drop
// the mark) shows; the mark's presence later.
const markDocument = (p) => p.evaluate(() => {
  window.okrdTestSameDocument = true;
});
const sameDocument = (p) => p.evaluate(() => window.okrdTestSameDocument === true);

test('live: a check-in recorded elsewhere appears in the open cascade without a reload', { timeout: 60_000 }, async () => {
  const creds = JSON.parse(readFileSync(path.join(dataDir, 'demo-credentials.json'), 'utf8'));
  const kr = await api(`/v1/key-results/${LIVE_KR}`);
  const { cycle } = await api(`/v1/objectives/${kr.objective}`);
  await go(`#/cascade?cycle=${cycle}`);
  await page.waitForSelector(`#cascade-tree[data-cycle="${cycle}"][data-as-of] [data-kr-id="${LIVE_KR}"]`);
  assert.equal(Number(await page.getAttribute(`[data-kr-id="${LIVE_KR}"]`, 'data-current')), kr.current);
  await page.waitForSelector('#live-status[data-state="live"]', { timeout: 20_000 });
  assert.match(await page.locator('#live-status').innerText(), /^Live: /, 'the state is written, not only coloured');
  await markDocument(page);

  const value = kr.current + 2.5;
  const recorded = await recordCheckIn(base, creds.editor, LIVE_KR, value);
  await waitForCurrent(page, LIVE_KR, value);
  assert.ok(await sameDocument(page), 'the page was neither reloaded nor left');
  assert.equal(Number(await page.getAttribute('#cascade-tree', 'data-as-of')), recorded.seq, 'the cascade is read at the new head');
  assert.equal(await page.locator(`[data-kr-id="${LIVE_KR}"] .pct`).innerText(), `${Math.round(recorded.progress * 100)}%`);
  assert.equal(await page.getAttribute('#as-of', 'max'), String(recorded.seq));
  assert.doesNotMatch(page.url(), /as_of=/, 'the view still follows the latest state');
  await shot('cascade-live');
  assertNoProblems('live updates at the latest state');
});

test('live: in the past the view stays, and the slider reaches the newer head', { timeout: 60_000 }, async () => {
  const creds = JSON.parse(readFileSync(path.join(dataDir, 'demo-credentials.json'), 'utf8'));
  await page.waitForSelector('#live-status[data-state="live"]', { timeout: 20_000 });
  const head = Number(await page.getAttribute('#cascade-tree', 'data-as-of'));
  const past = head - 3;
  await page.locator('#as-of').fill(String(past));
  await page.waitForSelector(`#cascade-tree[data-as-of="${past}"] [data-kr-id="${LIVE_KR}"]`);
  await page.waitForSelector(`#as-of-time[data-seq="${past}"]`);
  const shownThen = await page.getAttribute(`[data-kr-id="${LIVE_KR}"]`, 'data-current');
  const treeThen = await page.locator('#cascade-tree').innerHTML();
  assert.equal(await page.locator('#live-new').isVisible(), false);
  await markDocument(page);

  const kr = await api(`/v1/key-results/${LIVE_KR}`);
  const recorded = await recordCheckIn(base, creds.editor, LIVE_KR, kr.current + 1.25);
  // The slider's range grows to the new head, and a note says so.
  await page.waitForFunction((seq) => Number(document.getElementById('as-of').max) === seq, recorded.seq, { timeout: 20_000 });
  await page.waitForSelector('#live-new:not([hidden])');
  assert.match(await page.locator('#live-new').innerText(), /^1 new change/);
  assert.equal(await page.getAttribute('#live-new', 'data-count'), '1');
  assert.match(await page.locator('#as-of-readout').innerText(), new RegExp(`seq ${past} of ${recorded.seq}\\b`));
  // The view itself stays in the past.
  assert.equal(Number(await page.getAttribute('#cascade-tree', 'data-as-of')), past);
  assert.equal(await page.getAttribute(`[data-kr-id="${LIVE_KR}"]`, 'data-current'), shownThen);
  assert.equal(await page.locator('#cascade-tree').innerHTML(), treeThen, 'the tree was not redrawn');
  assert.equal(await page.inputValue('#as-of'), String(past));
  assert.match(page.url(), new RegExp(`as_of=${past}\\b`));
  await shot('cascade-live-past');

  // The new head is within the slider's reach.
  await page.focus('#as-of');
  await page.keyboard.press('End');
  await page.waitForSelector(`#cascade-tree[data-as-of="${recorded.seq}"]`);
  await waitForCurrent(page, LIVE_KR, recorded.current);
  await page.waitForSelector('#live-new', { state: 'hidden' });
  assert.ok(await sameDocument(page), 'the page was neither reloaded nor left');
  assertNoProblems('live updates in the past');
});

test('live: the key result view draws a check-in as it is recorded', { timeout: 60_000 }, async () => {
  const creds = JSON.parse(readFileSync(path.join(dataDir, 'demo-credentials.json'), 'utf8'));
  const kr = await api(`/v1/key-results/${LIVE_KR}`);
  await go(`#/kr/${LIVE_KR}`);
  await page.waitForSelector(`h1:text-is("${kr.title}")`);
  await page.waitForSelector('svg.chart');
  await page.waitForSelector('#live-status[data-state="live"]', { timeout: 20_000 });
  const before = await page.locator('svg.chart circle[data-check-in]').count();
  await markDocument(page);
  const recorded = await recordCheckIn(base, creds.editor, LIVE_KR, kr.current + 0.5);
  await page.waitForSelector(`svg.chart circle[data-check-in="${recorded.check_in.id}"]`, { timeout: 20_000 });
  assert.equal(await page.locator('svg.chart circle[data-check-in]').count(), before + 1);
  assert.equal(Number(await page.getAttribute(`svg.chart circle[data-check-in="${recorded.check_in.id}"]`, 'data-value')), recorded.current);
  assert.equal(await page.locator('.checkin-list li').count(), before + 1);
  assert.ok(await sameDocument(page), 'the page was neither reloaded nor left');
  assertNoProblems('live updates of a key result');
});

test('a key result chart draws one point per check-in, the target line and the moved target', { timeout: 60_000 }, async () => {
  for (const id of ['kr-stay-interviews', 'kr-engineers-hired', 'kr-records-migrated']) {
    await go(`#/kr/${id}`);
    await page.waitForSelector(`h1:text-is("${(await api(`/v1/key-results/${id}`)).title}")`);
    await page.waitForSelector('svg.chart');
    const { items } = await api(`/v1/key-results/${id}/check-ins?limit=1000`);
    const ids = await page.locator('svg.chart circle[data-check-in]').evaluateAll((cs) => cs.map((c) => c.dataset.checkIn));
    assert.deepEqual(ids, items.map((c) => c.id), `one point per check-in of ${id}`);
    const values = await page.locator('svg.chart circle[data-check-in]').evaluateAll((cs) => cs.map((c) => Number(c.dataset.value)));
    assert.deepEqual(values, items.map((c) => c.value));
    assert.equal(await page.locator('svg.chart [data-series="target"]').count(), 1);
    assert.equal(await page.locator('svg.chart [data-series="pace"]').count(), 1);
    assert.equal(await page.locator('.checkin-list li').count(), items.length);
    const targetChanges = (await api('/v1/diff')).changed.filter((c) => c.entity === id && c.field === 'target');
    assert.equal(await page.locator('svg.chart [data-change-field="target"]').count(), targetChanges.length,
      `target changes of ${id} marked`);
    await shot(`key-result-${id}`);
  }
  assertNoProblems('the key result view');
});

test('the review page lists the moved target and prints without the chrome', { timeout: 60_000 }, async () => {
  const { items: cycles } = await api('/v1/cycles');
  const closed = cycles.find((c) => c.state === 'closed');
  assert.ok(closed, 'the demo has a closed quarter');
  const review = await api(`/v1/cycles/${closed.id}/review`);
  const g = review.moved_goalposts.find((x) => x.key_result === 'kr-engineers-hired');
  assert.ok(g, 'the review API lists the moved target');
  await go(`#/review/${closed.id}`);
  const row = page.locator(`table.goalposts tr[data-key-result="${g.key_result}"]`);
  await row.waitFor();
  const cells = await row.locator('th, td').allInnerTexts();
  assert.equal(cells[0], 'Engineers hired');
  assert.equal(cells[1], 'target');
  assert.equal(Number(cells[2]), g.before);
  assert.equal(Number(cells[3]), g.after);
  assert.equal(await page.locator('.review-objective').count(), review.objectives.length);
  assert.equal(await page.locator(`tr.moved[data-kr-id="${g.key_result}"]`).count(), 1);
  assert.equal(await downloaded(page, 'md'), await apiText(base, `/v1/cycles/${closed.id}/review?format=md`));
  await shot('review');
  await page.emulateMedia({ media: 'print' });
  assert.equal(await page.locator('header.top').isVisible(), false);
  assert.equal(await page.locator('table.goalposts').isVisible(), true);
  await shot('review-print');
  await page.emulateMedia({ media: 'screen' });
  assertNoProblems('the review');
});

test('the audit view shows the chain and filters the event timeline for a token holder', { timeout: 60_000 }, async () => {
  const creds = JSON.parse(readFileSync(path.join(dataDir, 'demo-credentials.json'), 'utf8'));
  await go('#/audit');
  await page.waitForSelector('#token');
  await page.fill('#token', creds.auditor);
  await page.click('button[type="submit"]:text("Use token")');
  await page.waitForSelector('.chain[data-ok="true"]');
  const verify = await api('/v1/audit/verify', creds.auditor);
  assert.equal(await page.locator('.hash').innerText(), verify.head_hash);
  await page.waitForSelector('table.events tbody tr');
  assert.equal(await page.evaluate(() => Object.keys(localStorage).length), 0, 'nothing in localStorage');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('okrd-dashboard-token')), creds.auditor, 'the token is kept in sessionStorage');

  await page.fill('#f-actor', 'editor-4821');
  await page.selectOption('#f-type', 'key_result.target_changed');
  await page.click('button:text("Filter")');
  await page.waitForFunction(() => location.hash.includes('type=key_result.target_changed'));
  await page.waitForSelector('table.events tbody tr');
  const { items } = await api('/v1/events?actor=editor-4821&type=key_result.target_changed', creds.auditor);
  const seqs = await page.locator('table.events tbody tr').evaluateAll((rs) => rs.map((r) => Number(r.dataset.seq)));
  assert.deepEqual(seqs, items.map((e) => e.seq));
  assert.ok(seqs.length >= 1, 'the demo\'s moved targets are editor-4821\'s');
  await shot('audit');

  // With an audit token the chart's target change comes from the history.
  await go('#/kr/kr-engineers-hired');
  await page.waitForSelector('svg.chart [data-change-field="target"]');
  assert.match(await page.locator('.source').innerText(), /history/);
  await page.evaluate(() => sessionStorage.clear());
  assertNoProblems('the audit view');
});

test('usable at phone width', { timeout: 60_000 }, async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  for (const [hash, name] of [['#/cascade', 'phone-cascade'], ['#/kr/kr-stay-interviews', 'phone-key-result']]) {
    await go(hash);
    await page.waitForSelector(hash === '#/cascade' ? '#cascade-tree[data-as-of] [data-objective-id]' : 'svg.chart');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 1, `${hash} scrolls sideways by ${overflow}px at 390px`);
    await shot(name);
  }
  await page.setViewportSize({ width: 1280, height: 900 });
  assertNoProblems('the phone layout');
});

// Clicks the review's `format` download button on `p`; the saved file's text.
async function downloaded(p, format) {
  const [file] = await Promise.all([p.waitForEvent('download'), p.click(`button[data-download="${format}"]`)]);
  return readFileSync(await file.path(), 'utf8');
}

async function apiText(at, pathAndQuery, token) {
  const res = await fetch(`${at}${pathAndQuery}`, token ? { headers: { Authorization: `Bearer ${token}` } } : {});
  assert.equal(res.status, 200, `GET ${pathAndQuery}`);
  return res.text();
}

// Closes page `p` and stops the okrd `own` (from startOkrd) a test started
// for itself, removing its data.
async function closeOwn(p, own) {
  await p.close();
  own.proc.removeAllListeners('exit');
  own.proc.kill('SIGKILL');
  removeData(own.dir);
}

// Removes okrd's data directory `dir` and what okrd keeps beside it (the
// key store and the signing key).
function removeData(dir) {
  for (const p of [dir, `${dir}.keys`, `${dir}.signing.key`]) rmSync(p, { recursive: true, force: true });
}

// Runs `body({ privateBase, p, creds })` on a page of its own against an
// okrd of its own started with --private (creds: its demo tokens), then
// checks the page raised no error; both are closed whatever happens.
async function withPrivateOkrd(body) {
  const own = {};
  const privateBase = await startOkrd(['--private'], own);
  const p = await context.newPage();
  const errors = [];
  p.on('pageerror', (e) => errors.push(e.message));
  try {
    const creds = JSON.parse(readFileSync(path.join(own.dir, 'demo-credentials.json'), 'utf8'));
    await body({ privateBase, p, creds });
    assert.deepEqual(errors, []);
  } finally {
    await closeOwn(p, own);
  }
}

test('under --private the review downloads carry the token', { timeout: 120_000 }, async () => {
  await withPrivateOkrd(async ({ privateBase, p, creds }) => {
    const plain = await fetch(`${privateBase}/v1/cycles`);
    assert.equal(plain.status, 401, 'a link without the token would be refused');
    const { items: cycles } = JSON.parse(await apiText(privateBase, '/v1/cycles', creds.auditor));
    const closed = cycles.find((c) => c.state === 'closed');
    await p.goto(`${privateBase}/`);
    await p.evaluate((t) => sessionStorage.setItem('okrd-dashboard-token', t), creds.auditor);
    await p.goto(`${privateBase}/#/review/${closed.id}`);
    await p.waitForSelector('button[data-download="csv"]');
    for (const format of ['md', 'csv']) {
      const want = await apiText(privateBase, `/v1/cycles/${closed.id}/review?format=${format}`, creds.auditor);
      assert.equal(await downloaded(p, format), want, `the ${format} download is the API's answer`);
    }
  });
});

test('under --private the cascade follows changes with the tab\'s token', { timeout: 120_000 }, async () => {
  await withPrivateOkrd(async ({ privateBase, p, creds }) => {
    const plain = await fetch(`${privateBase}/v1/changes/stream`);
    assert.equal(plain.status, 401, 'the stream needs a token too');
    const kr = JSON.parse(await apiText(privateBase, `/v1/key-results/${LIVE_KR}`, creds.auditor));
    const { cycle } = JSON.parse(await apiText(privateBase, `/v1/objectives/${kr.objective}`, creds.auditor));
    await p.goto(`${privateBase}/`);
    await p.evaluate((t) => sessionStorage.setItem('okrd-dashboard-token', t), creds.auditor);
    await p.goto(`${privateBase}/#/cascade?cycle=${cycle}`);
    await waitForCurrent(p, LIVE_KR, kr.current);
    await p.waitForSelector('#live-status[data-state="live"]', { timeout: 20_000 });
    await markDocument(p);
    const recorded = await recordCheckIn(privateBase, creds.editor, LIVE_KR, kr.current + 2);
    await waitForCurrent(p, LIVE_KR, recorded.current);
    assert.equal(Number(await p.getAttribute('#cascade-tree', 'data-as-of')), recorded.seq);
    assert.ok(await sameDocument(p), 'the page was neither reloaded nor left');
  });
});

test('live: when okrd restarts the cascade reconnects and catches up', { timeout: 120_000 }, async () => {
  const own = {};
  const again = {};
  const ownBase = await startOkrd([], own);
  const p = await context.newPage();
  const errors = [];
  p.on('pageerror', (e) => errors.push(e.message));
  try {
    const creds = JSON.parse(readFileSync(path.join(own.dir, 'demo-credentials.json'), 'utf8'));
    const kr = JSON.parse(await apiText(ownBase, `/v1/key-results/${LIVE_KR}`));
    const { cycle } = JSON.parse(await apiText(ownBase, `/v1/objectives/${kr.objective}`));
    await p.goto(`${ownBase}/#/cascade?cycle=${cycle}`);
    await waitForCurrent(p, LIVE_KR, kr.current);
    await p.waitForSelector('#live-status[data-state="live"]', { timeout: 20_000 });
    await markDocument(p);

    // okrd stops, ending the stream: the indicator says so in words.
    own.proc.removeAllListeners('exit');
    const exited = new Promise((resolve) => own.proc.once('exit', resolve));
    own.proc.kill('SIGTERM');
    await exited;
    await p.waitForSelector('#live-status[data-state="reconnecting"]', { timeout: 20_000 });
    assert.match(await p.locator('#live-status').innerText(), /reconnecting/);

    // The same okrd again, on the same address and data; a check-in there
    // reaches the page once the stream resumes after the last seq it saw.
    await startOkrd(['--demo'], again, own.dir, 30_000, new URL(ownBase).host);
    const recorded = await recordCheckIn(ownBase, creds.editor, LIVE_KR, kr.current + 3);
    await waitForCurrent(p, LIVE_KR, recorded.current, 60_000);
    await p.waitForSelector('#live-status[data-state="live"]');
    assert.equal(Number(await p.getAttribute('#cascade-tree', 'data-as-of')), recorded.seq);
    assert.ok(await sameDocument(p), 'the page was neither reloaded nor left');
    assert.deepEqual(errors, []);
  } finally {
    if (again.proc) {
      again.proc.removeAllListeners('exit');
      again.proc.kill('SIGKILL');
    }
    await closeOwn(p, own);
  }
});

// The organisation tests/dashboard/big_org.sh imports: 10 departments of 10
// teams of 20 people, OBJECTIVES objectives in cycle "big".
const BIG_OBJECTIVES = 50_000;
// The dashboard's cap on what "Expand all" loads (views/cascade_load.js),
// and how far past it the reads already under way may take it: four teams
// of 20 people, each person with BIG_OBJECTIVES / 2000 objectives.
const EXPAND_CAP = 2000;
const EXPAND_SLACK = 4 * (20 + 20 * (BIG_OBJECTIVES / 2000));

// Makes the large organisation in a fresh directory with okrctl (beside
// okrd in the build, or OKRCTL_BINARY); returns the directory.
function bigOrganisation() {
  const okrctl = process.env.OKRCTL_BINARY || path.join(path.dirname(okrdBinary), '..', 'tools', 'okrctl');
  assert.ok(existsSync(okrctl), `okrctl is needed to make the large log: build it, or set OKRCTL_BINARY (${okrctl})`);
  const dir = mkdtempSync(path.join(tmpdir(), 'okrd-dashboard-big-'));
  const script = path.join(path.dirname(new URL(import.meta.url).pathname), 'big_org.sh');
  execFileSync('bash', [script, okrctl, dir, String(BIG_OBJECTIVES)], { stdio: ['ignore', 'ignore', 'inherit'] });
  return dir;
}

// Delays (or, with `status`, answers with that error) the reads of unit
// `unit`'s sub-units on page `p`.
async function holdSubtree(p, unit, { ms = 0, status = 0 } = {}) {
  await p.route((url) => url.pathname.endsWith('/v1/cascade') && url.searchParams.get('root') === unit, async (route) => {
    await new Promise((resolve) => setTimeout(resolve, ms));
    if (!status) return route.continue();
    return route.fulfill({
      status, contentType: 'application/json',
      body: JSON.stringify({ error: { code: 'unavailable', message: 'held by the test' } }),
    });
  });
}

test('at size: the top of a 50,000-objective organisation draws at once, okrd searches it, and units load as they open', { timeout: 300_000 }, async () => {
  const own = {};
  // It checks the whole chain of 119k events as it starts: 10-30 s here.
  const bigBase = await startOkrd([], own, bigOrganisation(), 120_000);
  const p = await context.newPage();
  const errors = [];
  const reads = [];
  p.on('pageerror', (e) => errors.push(e.message));
  p.on('request', (r) => {
    const url = new URL(r.url());
    if (url.pathname.endsWith('/v1/cascade')) reads.push(url.searchParams);
  });
  try {
    const started = Date.now();
    await p.goto(`${bigBase}/#/cascade?cycle=big`);
    await p.waitForSelector('#cascade-tree[data-as-of] [data-unit-id="d9"] .unit-head .pct');
    const firstRender = Date.now() - started;
    console.log(`first render of the ${BIG_OBJECTIVES}-objective cascade: ${firstRender} ms`);
    // The target is 3 s (docs/BENCHMARKS.md "Dashboard at size" has the
    // figures); on a machine shared with a build it takes a little longer,
    // so the test holds only a bound a whole-tree read could never meet.
    assert.ok(firstRender < 10_000, `the top units drew in ${firstRender} ms`);
    assert.ok(reads.every((q) => q.has('depth')), 'the whole tree is never read');

    // The top: the company and its departments, with their subtrees' roll-ups.
    const asOf = Number(await p.getAttribute('#cascade-tree', 'data-as-of'));
    const top = JSON.parse(await apiText(bigBase, `/v1/cascade?cycle=big&depth=1&as_of=${asOf}`));
    assert.equal(top.nodes[0].objective_count, BIG_OBJECTIVES);
    for (const node of [top.nodes[0], ...top.nodes[0].children]) {
      const head = p.locator(`[data-unit-id="${node.unit.id}"] > .unit-head`);
      assert.equal(await head.locator('.count').innerText(), `${node.objective_count} objectives`);
      assert.equal(await head.locator('.pct').innerText(), `${Math.round(node.progress * 100)}%`, `roll-up of ${node.unit.id}`);
    }
    assert.equal(await p.locator('[data-unit-id]').count(), 11, 'only the top is drawn');
    await shot('cascade-at-size', p);
    await searchBig(p, bigBase, asOf);
    await openUnits(p, bigBase, asOf, reads);
    // Another seq reads the top again, then the units opened before.
    await p.locator('#as-of').fill(String(asOf - 1));
    await p.waitForSelector(`#cascade-tree[data-as-of="${asOf - 1}"] [data-unit-id="d3"] [data-unit-id="d3-t9"]`);
    assert.ok(reads.some((q) => q.get('root') === 'd3' && Number(q.get('as_of')) === asOf - 1));
    await expandAllBounded(p);
    assert.deepEqual(errors, []);
  } finally {
    await closeOwn(p, own);
  }
});

// The search asks okrd, so it finds objectives in units not loaded, a page
// at a time, and names their owners; clearing it brings the tree back.
async function searchBig(p, bigBase, asOf) {
  let started = Date.now();
  await p.fill('#search', 'objective 43210');
  await p.waitForSelector('.search-results [data-objective-id="o43210"] .owner');
  console.log(`search of the ${BIG_OBJECTIVES}-objective cycle, typed to drawn: ${Date.now() - started} ms`);
  assert.equal(await p.locator('[data-objective-id]').count(), 1, 'one objective matches, and the tree stands aside');
  const found = p.locator('[data-objective-id="o43210"]');
  assert.equal(await found.locator('.objective-heading').innerText(), 'Objective 43210');
  assert.equal(await found.locator('.objective-head .owner').innerText(), 'Owner: Person 0.1.12');
  assert.match(p.url(), /q=objective(\+|%20)43210/);
  // okrd looks at a bounded number of objectives per request: the first page
  // of this rare match is empty with a `next`, and the dashboard follows it.
  const first = JSON.parse(await apiText(bigBase, `/v1/objectives?cycle=big&as_of=${asOf}&limit=25&q=objective+43210`));
  assert.deepEqual([first.items.length, typeof first.next], [0, 'string']);

  // "Person 3.4." is the 19 people of team 3.4: 475 objectives, 25 a page.
  const q = 'Person 3.4.';
  await p.fill('#search', q);
  const shown = () => p.locator('.search-results [data-objective-id]').evaluateAll((os) => os.map((o) => o.dataset.objectiveId));
  await p.waitForFunction(() => document.querySelectorAll('.search-results [data-objective-id]').length === 25);
  const want = JSON.parse(await apiText(bigBase, `/v1/objectives?cycle=big&as_of=${asOf}&limit=50&q=${encodeURIComponent(q)}`));
  assert.ok(want.next, 'more than two pages match');
  assert.deepEqual(await shown(), want.items.slice(0, 25).map((o) => o.id));
  started = Date.now();
  await p.click('#search-more');
  await p.waitForFunction(() => document.querySelectorAll('.search-results [data-objective-id]').length === 50);
  console.log(`the next page of matches: ${Date.now() - started} ms`);
  assert.deepEqual(await shown(), want.items.map((o) => o.id), 'the second page follows the first, at the same seq');
  const owners = await p.locator('.search-results .objective-head .owner').allInnerTexts();
  assert.ok(owners.every((o) => o.startsWith('Owner: Person 3.4.')), owners.join(', '));
  assert.equal(await p.locator('#search-more').count(), 1, 'still more to show');
  assert.doesNotMatch(await p.locator('#cascade-tree').innerText(), /null|undefined/, 'no empty part is written out');
  await shot('cascade-at-size-search', p);

  await p.fill('#search', '');
  await p.waitForSelector('#cascade-tree > ul.units [data-unit-id="d9"]');
  assert.equal(await p.locator('[data-objective-id]').count(), 0, 'the top of the tree again, no objective loaded');
}

// Opening a department shows a loading note, then its teams, read at the
// tree's seq; a read that fails says so in the unit and is tried again
// when the unit is opened again.
async function openUnits(p, bigBase, asOf, reads) {
  await holdSubtree(p, 'd3', { ms: 400 });
  await p.click('[data-unit-id="d3"] > .unit-head button.toggle');
  await p.waitForSelector('[data-unit-id="d3"] > .unit-body .loading');
  await p.waitForSelector('[data-unit-id="d3"] [data-unit-id="d3-t9"]');
  const d3 = JSON.parse(await apiText(bigBase, `/v1/cascade?cycle=big&root=d3&depth=1&as_of=${asOf}`)).nodes[0];
  const teams = await p.locator('[data-unit-id="d3"] > .unit-body > ul.units > li').evaluateAll((ls) => ls.map((l) => l.dataset.unitId));
  assert.deepEqual(teams, d3.children.map((c) => c.unit.id));
  const read = reads.find((q) => q.get('root') === 'd3');
  assert.equal(read.get('depth'), '1');
  assert.equal(Number(read.get('as_of')), asOf, 'a subtree is read at the seq the tree shows');
  assert.equal(await p.locator('[data-unit-id="d3"] > .unit-head button.toggle').getAttribute('aria-expanded'), 'true');

  await holdSubtree(p, 'd4', { status: 503 });
  const d4 = p.locator('[data-unit-id="d4"] > .unit-head button.toggle');
  await d4.click();
  await p.waitForSelector('[data-unit-id="d4"] > .unit-body .error:has-text("held by the test")');
  await p.unrouteAll();
  await d4.click();
  await d4.click();
  await p.waitForSelector('[data-unit-id="d4"] [data-unit-id="d4-t0"]');
  assert.equal(await p.locator('[data-unit-id="d4"] .error').count(), 0);
}

// "Expand all" loads level by level and stops near the cap, saying so.
async function expandAllBounded(p) {
  const started = Date.now();
  await p.click('#expand-all');
  await p.waitForSelector('#cascade-status:has-text("Stopped loading")', { timeout: 60_000 });
  console.log(`expand all up to the cap: ${Date.now() - started} ms`);
  const rows = await p.locator('[data-unit-id], [data-objective-id]').count();
  assert.ok(rows >= EXPAND_CAP && rows <= EXPAND_CAP + EXPAND_SLACK, `${rows} rows drawn`);
  assert.ok(await p.locator('button.toggle[data-load]').count() > 0, 'units past the cap stay to be opened');
}
