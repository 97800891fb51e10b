// The services framework's pages (its Marathon /v2 API, through the master):
//   #/x/services/<framework id>                 apps, deployments, rollbacks, waiting
//   #/x/services/<framework id>/apps/<app id>   one app: instances, deployments,
//                                               waiting instances and why, versions
// Live: the framework's /v2/events stream (relayed by the master) triggers a reload.

import { h, fill, link, route } from '../js/dom.js';
import { ago, duration, mb, num, time } from '../js/format.js';
import { bar, card, chips, empty, healthPill, kv, pageHead, pill, table } from '../js/components.js';
import { marathonItem } from '../js/waiting.js';
import {
  crumbs, livePage as mountLive, Refresher, ensureStyles, errorLine, liveBadge, partsBar, seconds,
} from './common.js';

const EVENTS = [
  'api_post_event', 'deployment_info', 'deployment_success', 'deployment_failed',
  'deployment_step_success', 'deployment_step_failure', 'status_update_event',
  'health_status_changed_event', 'app_terminated_event', 'instance_changed_event',
];

export default {
  id: 'services',
  title: 'Services',
  matches: (fw) => Boolean(fw.webui_url) && /services|marathon/i.test(fw.name || ''),
  parseQueue(json) {
    return ((json && json.queue) || []).map(marathonItem);
  },
  mount(root, ctx) {
    ensureStyles();
    const [view, appId] = ctx.params;
    return view === 'apps' && appId ? appPage(root, ctx, appId) : overviewPage(root, ctx);
  },
};

// ------------------------------------------------------------------ shared

const livePage = (root, ctx, load) =>
  mountLive(root, ctx, { cls: 'services-page', eventsPath: 'v2/events', events: EVENTS }, load);

function appLink(ctx, appId) {
  return h('a', { href: route('x', 'services', ctx.framework.id, 'apps', appId) }, appId);
}

function appPath(appId) {
  return 'v2/apps/' + String(appId).replace(/^\/+/, '').split('/').map(encodeURIComponent)
    .join('/');
}

async function deploymentsOf(ctx, appId) {
  try {
    return await ctx.api('dashboard/v1/deployments', appId ? { appId } : {});
  } catch {
    // a Marathon without mesoslite's dashboard views: its own deployments, no history
    const list = await ctx.api('v2/deployments');
    return {
      recent: [],
      deployments: list.filter((d) => !appId || (d.affectedApps || []).includes(appId))
        .map((d) => ({ ...d, appId: (d.affectedApps || [])[0], kind: ((d.currentActions || [])[0]
          || {}).action, startedAt: seconds(d.version), progress: null })),
    };
  }
}

function hasChecks(app) {
  return Boolean(app.healthChecks && app.healthChecks.length);
}

function appState(app, deployments, queued) {
  if (deployments.length) return 'deploying';
  if (queued && queued.delay && queued.delay.timeLeftSeconds > 0) return 'delayed';
  if (queued) return 'waiting';
  if (!app.instances) return 'suspended';
  const healthy = hasChecks(app) ? app.tasksHealthy : app.tasksRunning;
  return healthy >= app.instances ? 'running' : 'starting';
}

/** healthy / running / desired as one bar and its numbers. */
function instances(app) {
  const running = app.tasksRunning || 0;
  const checks = hasChecks(app);
  const healthy = checks ? app.tasksHealthy || 0 : running;
  const unhealthy = app.tasksUnhealthy || 0;
  const staged = app.tasksStaged || 0;
  const total = Math.max(app.instances || 0, running + staged);
  return h('div', { class: 'inst' },
    partsBar([
      { cls: 'ok', value: healthy, title: `${healthy} healthy` },
      { cls: 'run', value: running - healthy - unhealthy, title: 'running, health unknown' },
      { cls: 'fail', value: unhealthy, title: `${unhealthy} unhealthy` },
      { cls: 'stage', value: staged, title: `${staged} staging` },
    ], total),
    h('div', { class: 'counts' },
      checks ? [h('b', null, String(healthy)), ' healthy · '] : null,
      h('b', null, String(running)), ' running · ',
      h('b', null, String(app.instances || 0)), ' desired',
      staged ? ` · ${staged} staging` : ''));
}

function resourcesText(app) {
  return `${num(app.cpus)} cpu · ${mb(app.mem)}${app.disk ? ` · ${mb(app.disk)} disk` : ''}`;
}

function outcomeLabel(entry) {
  switch (entry.outcome) {
    case 'succeeded': return entry.kind === 'rollback' ? 'rolled back' : 'succeeded';
    case 'timed_out': return entry.rolledBackBy ? 'timed out · rolled back' : 'timed out';
    case 'cancelled': return entry.rolledBackBy ? 'cancelled · rolled back' : 'stopped';
    case 'superseded': return 'superseded';
    default: return String(entry.outcome || 'ended');
  }
}

/** One deployment in progress: what, since when, its deadline, steps and progress. */
function deploymentItem(ctx, d, { showApp = true } = {}) {
  const p = d.progress || null;
  const now = Date.now() / 1000;
  const steps = d.steps || [];
  const current = Number(d.currentStep) || 0;
  let deadline = null;
  if (d.deadline) {
    const left = d.deadline - now;
    deadline = h('span', { class: left <= 0 ? 'deadline late' : 'deadline' },
      left > 0 ? `rolls back by itself in ${duration(left)}`
        : 'past its timeout: rolling back');
  }
  let progress = null;
  if (p && p.instances !== undefined) {
    const stopping = d.kind === 'stop' || !p.instances;
    progress = [
      stopping
        ? bar(p.old + p.updated, Math.max(1, p.old + p.updated + p.killing),
          { format: String, label: 'tasks left', levels: false })
        : bar(p.updatedReady, p.instances, { format: String, label: 'new tasks ready',
          levels: false }),
      h('div', { class: 'counts' },
        stopping ? [h('b', null, String(p.old + p.updated)), ' tasks left']
          : [h('b', null, `${p.updatedReady} of ${p.instances}`), ' new tasks ready'],
        ` · ${p.updated - p.updatedReady} new starting · ${p.old} old · ${p.killing} being killed`,
        p.floor !== null && p.floor !== undefined
          ? ` · floor ${p.floor} healthy, ceiling ${p.ceiling} tasks` : ''),
    ];
  }
  return h('div', { class: 'deployment', dataset: { deployment: d.id } },
    h('div', { class: 'head' },
      h('span', { class: 'what' }, pill(d.kind || 'deploying', { label: d.kind || 'deploying' }),
        showApp ? appLink(ctx, d.appId) : null,
        d.rollbackOf ? h('span', { class: 'muted small', title: d.rollbackOf },
          `rollback of ${d.rollbackOf.slice(0, 8)}`) : null),
      h('span', { class: 'meta' }, d.startedAt ? `started ${ago(d.startedAt)}` : '',
        deadline ? ' · ' : '', deadline)),
    steps.length ? h('ol', { class: 'stepper' }, steps.map((s, i) => h('li', {
      class: i + 1 < current ? 'done' : (i + 1 === current ? 'current' : null) },
    `${i + 1}. ${((s.actions || [])[0] || {}).action || 'step'}`))) : null,
    progress,
    h('div', { class: 'meta small', title: d.id }, `deployment ${d.id}`));
}

function deploymentsBody(ctx, list, { showApp = true } = {}) {
  return list.length ? list.map((d) => deploymentItem(ctx, d, { showApp }))
    : empty('No deployment in progress.');
}

function recentTable(ctx, recent, { showApp = true } = {}) {
  if (!recent.length) return empty('No deployment has ended since the framework started.');
  const cols = [
    showApp ? { label: 'App' } : null, { label: 'Kind' }, { label: 'Outcome' },
    { label: 'Why' }, { label: 'Started' }, { label: 'Took', num: true },
  ].filter(Boolean);
  return table(cols, recent.slice(0, 30).map((e) => [
    showApp ? (e.appId ? appLink(ctx, e.appId) : '—') : null,
    [e.kind || '—', e.rollbackOf ? h('span', { class: 'id', title: e.rollbackOf },
      `of ${e.rollbackOf.slice(0, 8)}`) : null],
    pill(e.outcome, { label: outcomeLabel(e) }),
    h('span', { class: 'small' }, e.reason || ''),
    h('span', { class: 'muted nowrap' }, ago(e.startedAt)),
    e.startedAt ? duration(e.endedAt - e.startedAt) : '—',
  ].filter((c) => c !== null)), { cls: 'deployments-recent' });
}

function queueItem(ctx, q, { showApp = true } = {}) {
  const item = marathonItem(q);
  const id = (q.app || q.pod || {}).id;
  return h('div', { class: 'waiting-item' },
    h('div', { class: 'head' },
      h('span', { class: 'what' }, showApp ? appLink(ctx, id) : 'Instances',
        h('span', { class: 'muted' }, ` × ${q.count}`)),
      h('span', { class: 'fw' }, item.since ? `waiting since ${ago(item.since)}` : '')),
    item.reasons.length ? h('ul', { class: 'reasons' }, item.reasons.map((r) => h('li', null, r)))
      : h('div', { class: 'muted small' }, 'waiting for offers'));
}

// ------------------------------------------------------------------ overview

function overviewPage(root, ctx) {
  const head = h('div');
  const tiles = h('div', { class: 'tiles compact' });
  const apps = card('Apps', { flush: true, id: 'services-apps' });
  const active = card('Deployments', { hint: 'in progress', flush: true, id: 'services-deployments' });
  const recent = card('Recent deployments', { hint: 'rollbacks included', flush: true,
    id: 'services-recent' });
  const waiting = card('Waiting instances', { hint: 'why they have not started', flush: true,
    id: 'services-waiting' });
  const { page, feed, refresher } = livePage(root, ctx, load);
  page.append(head, tiles, apps,
    h('div', { class: 'grid grid-2 section' }, active, waiting),
    h('div', { class: 'section' }, recent));
  fill(head, pageHead('Services', { crumbs: crumbs(ctx), badges: [liveBadge(feed)],
    sub: ctx.framework.webui_url }));
  fill(apps.body, empty('Reading the apps…'));

  async function load() {
    const [appsJson, deps, queue] = await Promise.all([
      ctx.api('v2/apps'), deploymentsOf(ctx), ctx.api('v2/queue')]);
    const list = appsJson.apps || [];
    const byApp = new Map();
    for (const d of deps.deployments || []) {
      byApp.set(d.appId, [...(byApp.get(d.appId) || []), d]);
    }
    const queued = new Map((queue.queue || []).map((q) => [(q.app || {}).id, q]));
    const tile = (label, value, foot) => h('div', { class: 'card tile' },
      h('div', { class: 'label' }, label), h('div', { class: 'value' }, value),
      foot ? h('div', { class: 'foot' }, foot) : null);
    const running = list.reduce((n, a) => n + (a.tasksRunning || 0), 0);
    const desired = list.reduce((n, a) => n + (a.instances || 0), 0);
    const waitingCount = (queue.queue || []).reduce((n, q) => n + (q.count || 0), 0);
    fill(tiles,
      tile('Apps', String(list.length)),
      tile('Instances running', [String(running), h('span', { class: 'of' }, ` / ${desired}`)]),
      tile('Deployments', String((deps.deployments || []).length), 'in progress'),
      tile('Waiting', String(waitingCount), 'instances not placed yet'));
    fill(apps.body, list.length ? table(
      [{ label: 'App' }, { label: 'Status' }, { label: 'Instances', cls: 'bar-cell' },
        { label: 'Resources' }, { label: 'Version' }, { label: 'Deployment' },
        { label: 'Labels' }],
      list.map((a) => {
        const ds = byApp.get(a.id) || [];
        return [
          [appLink(ctx, a.id), h('span', { class: 'id', title: a.cmd || '' },
            a.cmd || (a.container && a.container.docker && a.container.docker.image) || '')],
          pill(appState(a, ds, queued.get(a.id))),
          instances(a),
          h('span', { class: 'nowrap small' }, resourcesText(a)),
          h('span', { class: 'nowrap', title: a.version }, ago(seconds(a.version))),
          ds.length ? ds.map((d) => h('div', { class: 'nowrap' }, pill(d.kind, { label: d.kind }),
            d.progress && d.progress.instances
              ? ` ${d.progress.updatedReady}/${d.progress.instances}` : '')) : '—',
          chips(a.labels),
        ];
      }), { cls: 'apps' }) : empty('No app yet: mesoslite apply -f examples/apps/'));
    fill(active.body, deploymentsBody(ctx, deps.deployments || []));
    fill(recent.body, recentTable(ctx, deps.recent || []));
    fill(waiting.body, (queue.queue || []).length
      ? queue.queue.map((q) => queueItem(ctx, q))
      : empty('Nothing waits: every instance has been placed.'));
  }

  refresher.start();
  return {
    update() {
      refresher.soon(100);
    },
    unmount() {
      refresher.stop();
      feed.close();
    },
  };
}

// ------------------------------------------------------------------ one app

function appPage(root, ctx, appId) {
  const fid = ctx.framework.id;
  const head = h('div');
  const details = card('Details');
  const deployments = card('Deployments', { flush: true, id: 'app-deployments' });
  const tasks = card('Instances', { flush: true, id: 'app-instances' });
  const waiting = card('Waiting instances', { hint: 'from /v2/queue', flush: true,
    id: 'app-waiting' });
  const versions = card('Versions', { hint: 'newest first', flush: true, id: 'app-versions' });
  const { page, feed, refresher } = livePage(root, ctx, load);
  const badge = liveBadge(feed);
  page.append(head, h('div', { class: 'grid grid-2' }, details, deployments),
    h('div', { class: 'section' }, tasks),
    h('div', { class: 'grid grid-2 section' }, waiting, versions));
  const services = h('a', { href: route('x', 'services', fid) }, 'Services');
  fill(head, pageHead(appId, { crumbs: crumbs(ctx, services), badges: [badge] }));
  fill(tasks.body, empty('Reading the app…'));

  async function load() {
    const [appJson, versionsJson, deps, queue] = await Promise.all([
      ctx.api(appPath(appId)), ctx.api(`${appPath(appId)}/versions`),
      deploymentsOf(ctx, appId), ctx.api('v2/queue')]);
    const app = appJson.app;
    const queued = (queue.queue || []).filter((q) => (q.app || {}).id === app.id);
    const image = app.container && app.container.docker && app.container.docker.image;
    fill(head, pageHead(app.id, { crumbs: crumbs(ctx, services),
      badges: [pill(appState(app, deps.deployments || [], queued[0]), { big: true }), badge],
      sub: app.cmd || image || '' }));
    const failure = app.lastTaskFailure;
    fill(details.body, kv([
      ['Instances', instances(app)],
      ['Resources', `${resourcesText(app)} per instance`],
      image ? ['Image', h('code', null, image)] : null,
      app.cmd ? ['Command', h('code', null, app.cmd)] : null,
      ['Version', `${time(seconds(app.version))} (${ago(seconds(app.version))})`],
      ['Config changed', time(seconds(app.versionInfo && app.versionInfo.lastConfigChangeAt))],
      ['Health checks', hasChecks(app) ? app.healthChecks.map((c) => c.protocol).join(', ')
        : 'none (running counts as healthy)'],
      ['Constraints', (app.constraints || []).length
        ? app.constraints.map((c) => h('span', { class: 'chip' }, c.join(' '))) : '—'],
      ['Upgrade strategy', app.upgradeStrategy ? `minimum health ` +
        `${app.upgradeStrategy.minimumHealthCapacity}, over capacity ` +
        `${app.upgradeStrategy.maximumOverCapacity}` : '—'],
      ['Labels', chips(app.labels)],
      failure ? ['Last failure', `${failure.state} on ${failure.host} ` +
        `${ago(seconds(failure.timestamp))}: ${failure.message || ''}`] : null,
    ]));
    fill(deployments.body, deploymentsBody(ctx, deps.deployments || [], { showApp: false }),
      h('div', { class: 'card-head' }, h('h3', null, 'Recent')),
      recentTable(ctx, deps.recent || [], { showApp: false }));
    const list = app.tasks || [];
    fill(tasks.body, list.length ? table(
      [{ label: 'Task' }, { label: 'Host' }, { label: 'Ports' }, { label: 'Health' },
        { label: 'State' }, { label: 'Version' }, { label: 'Started' }],
      list.map((t) => {
        const check = (t.healthCheckResults || [])[0];
        return [
          h('a', { href: route('tasks', fid, t.id) }, t.id),
          h('a', { href: route('agents', t.slaveId) }, t.host),
          h('code', null, (t.ports || []).join(', ') || '—'),
          check ? healthPill(check.alive) : h('span', { class: 'muted' },
            hasChecks(app) ? 'no result yet' : '—'),
          pill(t.state),
          h('span', { class: 'nowrap', title: t.version }, time(seconds(t.version))),
          h('span', { class: 'muted nowrap' }, ago(seconds(t.startedAt))),
        ];
      }), { cls: 'instances' }) : empty(app.instances ? 'No instance yet.'
      : 'The app is suspended (0 instances).'));
    fill(waiting.body, queued.length ? queued.map((q) => queueItem(ctx, q, { showApp: false }))
      : empty('Nothing waits: every instance has been placed.'));
    const vs = versionsJson.versions || [];
    const config = app.versionInfo && app.versionInfo.lastConfigChangeAt;
    fill(versions.body, vs.length ? table([{ label: 'Version' }, { label: '' }],
      vs.slice(0, 20).map((v) => [
        h('span', { title: v }, `${time(seconds(v))} · ${ago(seconds(v))}`),
        [v === app.version ? pill('running', { label: 'current' }) : null,
          v === config ? h('span', { class: 'chip' }, 'config change') : null],
      ]), { cls: 'versions' }) : empty('No version.'));
  }

  refresher.start();
  return {
    update() {
      refresher.soon(100);
    },
    unmount() {
      refresher.stop();
      feed.close();
    },
  };
}
