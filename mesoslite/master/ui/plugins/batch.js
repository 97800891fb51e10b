// The batch framework's pages (its /v1 API, through the master):
//   #/x/batch/<framework id>                 runs, what waits and why, jobs
//   #/x/batch/<framework id>/runs/<run id>   one run: the pipeline drawn as a graph,
//                                            per-step progress, the tasks' logs,
//                                            its waiting tasks and why
// Live: the framework's /mesoslite/v1/events stream (relayed by the master) triggers a reload.

import { h, fill, link, route } from '../js/dom.js';
import { ago, duration, time } from '../js/format.js';
import { card, empty, kv, pageHead, pill, table } from '../js/components.js';
import { genericItem } from '../js/waiting.js';
import {
  crumbs, livePage as mountLive, LogTail, Refresher, ensureStyles, errorLine, liveBadge, svg,
} from './common.js';

// The framework's native API (its /v1 answers in Metronome's shapes).
const NATIVE = 'mesoslite/v1';
const EVENTS = [
  'job_created', 'job_updated', 'job_deleted', 'run_started', 'run_cancelling',
  'step_updated', 'attempt_updated', 'run_finished', 'schedule_skipped',
];
const ACTIVE_ATTEMPT = new Set(['LAUNCHING', 'STAGING', 'STARTING', 'RUNNING', 'KILLING']);
const PARTS = [['done', 'st-succeeded'], ['running', 'st-running'], ['failed', 'st-failed'],
  ['pending', 'st-pending']];

export default {
  id: 'batch',
  title: 'Batch',
  matches: (fw) => Boolean(fw.webui_url) && /batch|metronome/i.test(fw.name || ''),
  parseQueue(json) {
    return ((json && json.queue) || []).map(genericItem);
  },
  mount(root, ctx) {
    ensureStyles();
    const [view, runId] = ctx.params;
    return view === 'runs' && runId ? runPage(root, ctx, runId) : runsPage(root, ctx);
  },
};

// ------------------------------------------------------------------ shared

const livePage = (root, ctx, load) =>
  mountLive(root, ctx, { cls: 'batch-page', eventsPath: `${NATIVE}/events`, events: EVENTS },
    load);

function runLink(ctx, runId, text = runId) {
  return h('a', { href: route('x', 'batch', ctx.framework.id, 'runs', runId) }, text);
}

function lower(state) {
  return String(state || 'unknown').toLowerCase();
}

/** Task counts as a small stacked bar and its numbers. */
function countsBar(counts) {
  if (!counts) return h('span', { class: 'muted' }, '—');
  const total = PARTS.reduce((n, [key]) => n + (counts[key] || 0), 0) || 1;
  return h('div', null,
    h('div', { class: 'mini-stacked', title: PARTS.map(([k]) => `${counts[k] || 0} ${k}`)
      .join(', ') }, PARTS.filter(([key]) => counts[key]).map(([key, cls]) =>
      h('span', { class: cls, style: { width: `${(counts[key] / total) * 100}%` } }))),
    h('div', { class: 'counts' }, PARTS.map(([key], i) => [i ? ' · ' : '',
      h('b', null, String(counts[key] || 0)), ` ${key}`])));
}

function stepsProgress(run) {
  if (run.tasks) return countsBar(run.tasks);
  const steps = run.steps || [];
  const done = steps.filter((s) => s.state === 'SUCCEEDED').length;
  return h('span', { class: 'counts' }, h('b', null, `${done} of ${steps.length}`),
    ' steps succeeded');
}

function took(start, end) {
  if (!start) return '—';
  return duration((end || Date.now() / 1000) - start);
}

function queueView(ctx, entries, { showRun = true } = {}) {
  if (!entries.length) return empty('Nothing waits.');
  return entries.slice(0, 50).map((q) => h('div', { class: 'waiting-item' },
    h('div', { class: 'head' },
      h('span', { class: 'what' }, showRun ? [runLink(ctx, q.run), ' · '] : null,
        `step ${q.step}`, h('span', { class: 'muted' },
          ` · task${(q.tasks || []).length === 1 ? '' : 's'} ${(q.tasks || []).join(', ')}`)),
      h('span', { class: 'fw' }, pill(q.status), q.position ? ` #${q.position} in the fair order`
        : '')),
    h('ul', { class: 'reasons' }, h('li', null, q.why || q.status))));
}

// ------------------------------------------------------------------ the runs

function runsPage(root, ctx) {
  const head = h('div');
  const tiles = h('div', { class: 'tiles compact' });
  const runs = card('Runs', { hint: 'newest first', flush: true, id: 'batch-runs' });
  const waiting = card('Waiting tasks', { hint: 'why they have not started', flush: true,
    id: 'batch-waiting' });
  const jobs = card('Jobs', { flush: true, id: 'batch-jobs' });
  const { page, feed, refresher } = livePage(root, ctx, load);
  page.append(head, tiles, runs, h('div', { class: 'grid grid-2 section' }, waiting, jobs));
  fill(head, pageHead('Batch', { crumbs: crumbs(ctx), badges: [liveBadge(feed)],
    sub: ctx.framework.webui_url }));
  fill(runs.body, empty('Reading the runs…'));

  async function load() {
    const [runsJson, queue, jobsJson] = await Promise.all([
      ctx.api('dashboard/v1/runs', { limit: 50 }), ctx.api(`${NATIVE}/queue`),
      ctx.api(`${NATIVE}/jobs`)]);
    const list = runsJson.runs || [];
    const entries = queue.queue || [];
    const active = list.filter((r) => r.state === 'ACTIVE');
    const tile = (label, value, foot) => h('div', { class: 'card tile' },
      h('div', { class: 'label' }, label), h('div', { class: 'value' }, value),
      foot ? h('div', { class: 'foot' }, foot) : null);
    const running = active.reduce((n, r) => n + ((r.tasks && r.tasks.running) || 0), 0);
    fill(tiles,
      tile('Active runs', String(active.length), `${list.length} shown`),
      tile('Running tasks', String(running)),
      tile('Waiting tasks', String(entries.reduce((n, q) => n + (q.tasks || []).length, 0)),
        queue.suppressed ? 'offers suppressed' : null),
      tile('Offers held', String((queue.offers && queue.offers.held) || 0),
        `on ${(queue.offers && queue.offers.agents) || 0} agents`));
    fill(runs.body, list.length ? table(
      [{ label: 'Run' }, { label: 'User' }, { label: 'Status' }, { label: 'Progress' },
        { label: 'Started' }, { label: 'Finished' }, { label: 'Took', num: true }],
      list.map((r) => [
        [runLink(ctx, r.id, r.job_id), h('span', { class: 'id' }, r.id)],
        r.user || '—',
        pill(r.phase || r.state),
        stepsProgress(r),
        h('span', { class: 'nowrap', title: time(r.created_at) }, ago(r.created_at)),
        h('span', { class: 'nowrap', title: time(r.finished_at) },
          r.finished_at ? ago(r.finished_at) : '—'),
        took(r.created_at, r.finished_at),
      ]), { cls: 'runs' }) : empty('No run yet: mesoslite batch submit FILE'));
    fill(waiting.body, queueView(ctx, entries));
    const jobList = Array.isArray(jobsJson) ? jobsJson : [];
    fill(jobs.body, jobList.length ? table(
      [{ label: 'Job' }, { label: 'User' }, { label: 'Steps', num: true },
        { label: 'Next run' }, { label: 'Active', num: true }],
      jobList.map((j) => [
        [j.id, j.description ? h('span', { class: 'id' }, j.description) : null],
        j.user || '—', String((j.steps || []).length),
        (j.schedules || []).filter((s) => s.next_run_at).map((s) =>
          h('div', { class: 'nowrap small' }, `${s.cron} → ${time(s.next_run_at)}`)),
        String((j.active_runs || []).length),
      ]), { cls: 'jobs' }) : empty('No job yet.'));
  }

  refresher.start();
  return {
    update() {
      refresher.soon(150);
    },
    unmount() {
      refresher.stop();
      feed.close();
    },
  };
}

// ------------------------------------------------------------------ one run

function runPage(root, ctx, runId) {
  const fid = ctx.framework.id;
  const head = h('div');
  const graph = card('Pipeline', { hint: 'click a step for its tasks and logs', id: 'dag' });
  const details = card('Details');
  const steps = card('Steps', { flush: true, id: 'batch-steps' });
  const waiting = card('Waiting tasks', { hint: 'why they have not started', flush: true,
    id: 'run-waiting' });
  const logs = card('Tasks and logs', { flush: true, id: 'batch-logs' });
  const { page, feed, refresher } = livePage(root, ctx, load);
  const badge = liveBadge(feed);
  const batch = h('a', { href: route('x', 'batch', fid) }, 'Batch');
  // the graph gets the page's width: a pipeline is wider than it is tall
  page.append(head, graph, h('div', { class: 'grid grid-3-1 section' }, steps, details),
    h('div', { class: 'grid grid-3-1 section' }, logs, waiting));
  fill(head, pageHead(runId, { crumbs: crumbs(ctx, batch), badges: [badge] }));
  fill(graph.body, empty('Reading the run…'));

  const pre = h('pre', { class: 'log small', id: 'batch-log' });
  const tail = new LogTail(pre);
  const selection = { step: null, attempt: null, file: 'stdout', opened: null };
  let run = null;
  let graphKey = '';

  function select(step) {
    selection.step = step;
    selection.attempt = null;
    draw();
  }

  async function load() {
    const [runJson, queue] = await Promise.all([
      ctx.api(`${NATIVE}/runs/${encodeURIComponent(runId)}`), ctx.api(`${NATIVE}/queue`)]);
    run = runJson;
    fill(head, pageHead(run.id, { crumbs: crumbs(ctx, batch),
      badges: [pill(run.phase || run.state, { big: true }), badge],
      sub: `job ${run.job_id} · user ${run.user} · ${run.trigger}` }));
    fill(details.body, kv([
      ['Job', run.job_id],
      ['User', run.user],
      ['Status', [pill(run.phase || run.state), run.message ? ` ${run.message}` : '']],
      ['Trigger', run.trigger],
      ['Priority', String(run.priority)],
      ['Started', `${time(run.created_at)} (${ago(run.created_at)})`],
      ['Finished', run.finished_at ? time(run.finished_at) : '—'],
      ['Took', took(run.created_at, run.finished_at)],
      run.rerun_of ? ['Rerun of', runLink(ctx, run.rerun_of)] : null,
      ['Tasks', countsBar(totals(run.steps))],
    ]));
    fill(waiting.body, queueView(ctx, (queue.queue || []).filter((q) => q.run === run.id),
      { showRun: false }));
    draw();
  }

  function draw() {
    if (!run) return;
    const list = run.steps || [];
    const attempts = run.attempts || [];
    if (!selection.step || !list.some((s) => s.name === selection.step)) {
      const running = list.find((s) => s.state === 'RUNNING');
      const started = list.filter((s) => attempts.some((a) => a.step === s.name));
      selection.step = (running || started.at(-1) || list[0] || {}).name || null;
    }
    const key = JSON.stringify([selection.step, list.map((s) => [s.name, s.state, s.counts])]);
    if (key !== graphKey) {
      graphKey = key;
      fill(graph.body, h('div', { class: 'dag-wrap' }, dag(list, selection.step, select)),
        legend());
    }
    fill(steps.body, table(
      [{ label: 'Step' }, { label: 'State' }, { label: 'Progress', cls: 'bar-cell' },
        { label: 'Tasks', num: true }, { label: 'After' }, { label: 'Started' },
        { label: 'Took', num: true }, { label: 'Message' }],
      list.map((s) => [
        h('a', { href: '#', class: 'pick', onclick: (e) => {
          e.preventDefault();
          select(s.name);
        } }, s.name),
        pill(s.state),
        countsBar(s.counts),
        `${s.completions}${s.parallelism && s.parallelism < s.completions
          ? ` (${s.parallelism} at once)` : ''}${s.gang ? ' gang' : ''}`,
        (s.depends_on || []).join(', ') || '—',
        h('span', { class: 'nowrap' }, s.started_at ? ago(s.started_at) : '—'),
        s.started_at ? took(s.started_at, s.finished_at) : '—',
        h('span', { class: 'small' }, s.message || ''),
      ]), { cls: 'steps' }));
    for (const [i, tr] of [...steps.body.querySelectorAll('tbody tr')].entries()) {
      tr.classList.toggle('selected', list[i] && list[i].name === selection.step);
    }
    drawLogs(attempts.filter((a) => a.step === selection.step));
  }

  function drawLogs(attempts) {
    const sorted = [...attempts].sort((a, b) => a.index - b.index || a.number - b.number);
    if (!selection.attempt || !sorted.some((a) => a.id === selection.attempt)) {
      const latest = [...sorted].sort((a, b) => (b.created_at || 0) - (a.created_at || 0));
      const pick = latest.find((a) => ACTIVE_ATTEMPT.has(a.state)) || latest[0];
      selection.attempt = pick ? pick.id : null;
    }
    const chosen = sorted.find((a) => a.id === selection.attempt) || null;
    const files = h('div', { class: 'tabs' }, ['stdout', 'stderr'].map((f) => h('button', {
      type: 'button', class: f === selection.file ? 'on' : null, onclick: () => {
        selection.file = f;
        draw();
      } }, f)));
    fill(logs.body,
      h('div', { class: 'card-head' }, h('h3', null, `Step ${selection.step || '—'}`),
        chosen ? files : null),
      sorted.length ? table(
        [{ label: 'Task' }, { label: 'Attempt', num: true }, { label: 'State' },
          { label: 'Host' }, { label: 'Started' }, { label: 'Took', num: true },
          { label: 'Message' }, { label: '' }],
        sorted.map((a) => [
          h('a', { href: '#', class: 'pick', onclick: (e) => {
            e.preventDefault();
            selection.attempt = a.id;
            draw();
          } }, `[${a.index}]`),
          String(a.number), pill(a.state),
          a.agent_id ? h('a', { href: route('agents', a.agent_id) }, a.hostname || a.agent_id)
            : '—',
          h('span', { class: 'nowrap' }, a.started_at ? ago(a.started_at) : '—'),
          a.started_at ? took(a.started_at, a.finished_at) : '—',
          h('span', { class: 'small' }, a.kill_reason || a.message || ''),
          h('a', { href: route('tasks', fid, a.task_id), title: a.task_id }, 'task page'),
        ]), { cls: 'attempts' }) : empty(selection.step
        ? 'No task of this step has been launched yet.' : 'No step.'),
      pre);
    const rows = [...logs.body.querySelectorAll('table.attempts tbody tr')];
    for (const [i, tr] of rows.entries()) tr.classList.toggle('selected', sorted[i].id === selection.attempt);
    openLog(chosen);
  }

  function openLog(attempt) {
    const key = attempt ? `${attempt.id}/${selection.file}` : null;
    if (key === selection.opened) return;
    selection.opened = key;
    if (!attempt) {
      tail.stop();
      fill(pre, h('span', { class: 'note' }, 'Choose a task to see its output.'));
      return;
    }
    const model = ctx.store.model;
    const agent = model && model.agents.get(attempt.agent_id);
    if (!agent || agent.state !== 'active') {
      tail.stop();
      selection.opened = null; // try again when the agent is back
      fill(pre, h('span', { class: 'note' }, attempt.agent_id
        ? 'The task\u2019s agent is not connected: its sandbox cannot be read now.'
        : 'The task has not been placed on an agent yet.'));
      return;
    }
    tail.open({ agentId: attempt.agent_id, frameworkId: fid, taskId: attempt.task_id,
      file: selection.file,
      follow: () => {
        const a = run && (run.attempts || []).find((x) => x.id === attempt.id);
        return Boolean(a && ACTIVE_ATTEMPT.has(a.state));
      } });
  }

  refresher.start();
  return {
    update() {
      refresher.soon(150);
    },
    unmount() {
      refresher.stop();
      feed.close();
      tail.stop();
    },
  };
}

function totals(steps) {
  const out = { done: 0, running: 0, failed: 0, pending: 0 };
  for (const s of steps || []) {
    for (const key of Object.keys(out)) out[key] += (s.counts && s.counts[key]) || 0;
  }
  return out;
}

function legend() {
  const states = ['WAITING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'SKIPPED', 'CANCELLED'];
  return h('div', { class: 'legend' }, states.map((s) =>
    h('span', { class: `item st-${lower(s)}` }, h('span', { class: 'swatch' }), lower(s))),
  h('span', { class: 'item muted small' }, '- - - after a step allowed to fail'));
}

// ------------------------------------------------------------------ the graph

const NODE_W = 184;
const NODE_H = 60;
const GAP_X = 72;
const GAP_Y = 20;
const PAD = 14;

/** Steps in columns by topological depth (a step is one column right of its deepest
 *  dependency), ordered in each column by where their dependencies sit. */
export function layout(steps) {
  const byName = new Map(steps.map((s) => [s.name, s]));
  const depth = new Map();
  const visiting = new Set();
  const depthOf = (name) => {
    if (depth.has(name)) return depth.get(name);
    if (visiting.has(name)) return 0; // a cycle cannot be submitted; never loop anyway
    visiting.add(name);
    const deps = ((byName.get(name) || {}).depends_on || []).filter((d) => byName.has(d));
    const d = deps.reduce((m, dep) => Math.max(m, depthOf(dep) + 1), 0);
    visiting.delete(name);
    depth.set(name, d);
    return d;
  };
  const layers = [];
  for (const s of steps) {
    const d = depthOf(s.name);
    (layers[d] = layers[d] || []).push(s.name);
  }
  const row = new Map();
  layers.forEach((names, d) => {
    if (d > 0) {
      const center = (n) => {
        const deps = ((byName.get(n) || {}).depends_on || []).filter((x) => row.has(x));
        return deps.length ? deps.reduce((t, x) => t + row.get(x), 0) / deps.length : 0;
      };
      names.sort((a, b) => center(a) - center(b));
    }
    names.forEach((n, i) => row.set(n, i));
  });
  const rows = Math.max(1, ...layers.map((l) => (l || []).length));
  const pos = new Map();
  layers.forEach((names, d) => {
    const offset = ((rows - names.length) * (NODE_H + GAP_Y)) / 2;
    names.forEach((n, i) => pos.set(n, { x: PAD + d * (NODE_W + GAP_X),
      y: PAD + offset + i * (NODE_H + GAP_Y) }));
  });
  return { pos, width: PAD * 2 + layers.length * NODE_W + Math.max(0, layers.length - 1) * GAP_X,
    height: PAD * 2 + rows * NODE_H + (rows - 1) * GAP_Y };
}

function clip(text, max) {
  const s = String(text);
  return s.length > max ? `${s.slice(0, max - 1)}\u2026` : s;
}

/** The pipeline as an inline SVG: a node per step coloured by its state, an edge per
 *  dependency. */
export function dag(steps, selected, onSelect) {
  const { pos, width, height } = layout(steps);
  const byName = new Map(steps.map((s) => [s.name, s]));
  const edges = [];
  for (const s of steps) {
    for (const dep of s.depends_on || []) {
      const from = pos.get(dep);
      const to = pos.get(s.name);
      if (!from || !to) continue;
      const x1 = from.x + NODE_W;
      const y1 = from.y + NODE_H / 2;
      const x2 = to.x - 2;
      const y2 = to.y + NODE_H / 2;
      const bend = Math.max(24, (x2 - x1) / 2);
      const source = byName.get(dep);
      edges.push(svg('path', {
        class: `dag-edge${source.state === 'SUCCEEDED' ? ' done' : ''}` +
          `${source.allow_failure ? ' soft' : ''}`,
        d: `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`,
        'marker-end': 'url(#dag-arrow)', 'data-from': dep, 'data-to': s.name }));
    }
  }
  const nodes = steps.map((s) => {
    const { x, y } = pos.get(s.name);
    const c = s.counts || { done: 0, running: 0, failed: 0, pending: 0 };
    const total = Math.max(1, s.completions || (c.done + c.running + c.failed + c.pending));
    const barW = NODE_W - 24;
    const sub = `${lower(s.state)} · ${c.done}/${s.completions || total} done` +
      (c.running ? ` · ${c.running} running` : '') + (c.failed ? ` · ${c.failed} failed` : '');
    return svg('g', {
      class: `dag-node st-${lower(s.state)}${s.name === selected ? ' selected' : ''}`,
      transform: `translate(${x},${y})`, 'data-step': s.name, 'data-state': s.state,
      tabindex: 0, role: 'button', onclick: () => onSelect(s.name),
      onkeydown: (e) => {
        if (e.key === 'Enter' || e.key === ' ') onSelect(s.name);
      } },
    svg('title', null, `${s.name}: ${lower(s.state)}; ${c.done} done, ${c.running} running, ` +
      `${c.failed} failed, ${c.pending} pending${s.message ? `. ${s.message}` : ''}`),
    svg('rect', { class: 'box', width: NODE_W, height: NODE_H, rx: 9 }),
    svg('text', { class: 'name', x: 12, y: 22 }, clip(s.name, 22),
      s.completions > 1 ? svg('tspan', { class: 'sub', dx: 6 }, `×${s.completions}`) : null),
    svg('text', { class: 'sub', x: 12, y: 40 }, clip(sub, 30)),
    svg('rect', { class: 'track', x: 12, y: NODE_H - 12, width: barW, height: 4, rx: 2 }),
    svg('rect', { class: 'fill', x: 12, y: NODE_H - 12, width: (barW * c.done) / total,
      height: 4, rx: 2 }),
    c.failed ? svg('rect', { class: 'fill failed', x: 12 + (barW * c.done) / total,
      y: NODE_H - 12, width: (barW * c.failed) / total, height: 4 }) : null);
  });
  // drawn at its natural size, shrunk (never grown) to fit the card: the width is an
  // attribute, the cap a CSSOM property (the CSP forbids inline style attributes)
  const el = svg('svg', { class: 'dag', width: '100%', viewBox: `0 0 ${width} ${height}`,
    role: 'img', 'aria-label': `pipeline of ${steps.length} steps` },
  svg('defs', null, svg('marker', { id: 'dag-arrow', viewBox: '0 0 10 10', refX: 9, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
  svg('path', { d: 'M0,0 L10,5 L0,10 z' }))),
  edges, nodes);
  el.style.maxWidth = `${width}px`;
  return el;
}
