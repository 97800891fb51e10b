// The cluster at a glance: totals, tasks by state, agents with their utilisation,
// frameworks with their DRF shares, what waits and why, recent events, tasks.

import { h, fill, link } from '../dom.js';
import { ago, mb, num, shortState, stateClass, TASK_STATES } from '../format.js';
import {
  bar, card, chips, empty, healthPill, idLabel, pill, shareBar, stacked, table,
} from '../components.js';
import { mountWaiting } from '../waiting.js';

const MAX_TASK_ROWS = 200;

export function mount(root, { store }) {
  const tiles = h('div', { class: 'tiles' });
  const states = card('Tasks by state');
  const feed = card('Recent events', { hint: 'live', flush: true });
  const agents = card('Agents', { flush: true });
  const frameworks = card('Frameworks', { hint: 'DRF shares from the allocator', flush: true });
  const waiting = card('Why is this waiting?', { hint: 'from the frameworks\u2019 queues',
    flush: true, id: 'waiting' });
  const filter = h('input', { type: 'search', placeholder: 'Filter tasks by name, id, state…',
    'aria-label': 'Filter tasks' });
  const tasks = card('Tasks', { flush: true, actions: h('div', { class: 'toolbar' }, filter),
    id: 'tasks' });
  fill(root,
    h('div', { class: 'page-head' }, h('div', null, h('h1', null, 'Cluster'),
      h('div', { class: 'sub', id: 'cluster-sub' }))),
    tiles,
    h('div', { class: 'grid grid-3-1' }, h('div', { class: 'stack' }, states, agents, frameworks),
      h('div', { class: 'stack' }, waiting, feed)),
    h('div', { style: { marginTop: '1rem' } }, tasks));
  fill(waiting.body, empty('Asking the frameworks…'));
  const waitingPanel = mountWaiting(waiting.body, store);
  let model = null;
  filter.addEventListener('input', () => model && renderTasks(tasks, model, filter.value));

  return {
    update(next) {
      model = next;
      const sub = root.querySelector('#cluster-sub');
      const s = next.state;
      fill(sub, `master ${s.hostname}:${(s.leader_info && s.leader_info.port) || ''} · `,
        `version ${s.version} · up since ${ago(s.start_time)}`);
      renderTiles(tiles, next);
      renderStates(states, next);
      renderAgents(agents, next);
      renderFrameworks(frameworks, next);
      renderFeed(feed, store, next);
      renderTasks(tasks, next, filter.value);
    },
    unmount() {
      waitingPanel.unmount();
    },
  };
}

function sum(agents, key, name) {
  return agents.reduce((total, a) => total + (Number(a[key] && a[key][name]) || 0), 0);
}

function renderTiles(el, model) {
  const agents = [...model.agents.values()];
  const active = agents.filter((a) => a.state === 'active');
  const down = {};
  for (const a of agents) if (a.state !== 'active') down[a.state] = (down[a.state] || 0) + 1;
  const agentFoot = Object.keys(down).length
    ? Object.entries(down).map(([state, n]) => h('span',
      { class: state === 'unreachable' ? 'bad' : null }, `${n} ${state} `))
    : 'all active';
  const fws = model.state.frameworks || [];
  const running = model.tasks.filter((e) => e.task.state === 'TASK_RUNNING').length;
  const tile = (label, value, foot, extra) => h('div', { class: 'card tile' },
    h('div', { class: 'label' }, label), h('div', { class: 'value' }, value),
    foot ? h('div', { class: 'foot' }, foot) : null, extra || null);
  const cpus = [sum(active, 'used_resources', 'cpus'), sum(active, 'resources', 'cpus')];
  const mem = [sum(active, 'used_resources', 'mem'), sum(active, 'resources', 'mem')];
  fill(el,
    tile('Agents', [String(active.length), h('span', { class: 'of' }, ` / ${agents.length}`)],
      agentFoot),
    tile('Frameworks', String(fws.length),
      `${fws.filter((f) => f.connected).length} connected`),
    tile('Running tasks', String(running), `${model.tasks.length} active in all`),
    tile('CPUs allocated', [num(cpus[0]), h('span', { class: 'of' }, ` / ${num(cpus[1])}`)], null,
      bar(cpus[0], cpus[1], { format: num, label: 'cpus' })),
    tile('Memory allocated', [mb(mem[0]), h('span', { class: 'of' }, ` / ${mb(mem[1])}`)], null,
      bar(mem[0], mem[1], { format: mb, label: 'mem' })));
}

function renderStates(el, model) {
  const counts = {};
  for (const { task } of model.tasks) counts[task.state] = (counts[task.state] || 0) + 1;
  for (const { task } of model.completed) counts[task.state] = (counts[task.state] || 0) + 1;
  fill(el.body, stacked(counts, TASK_STATES));
}

function renderAgents(el, model) {
  const agents = [...model.agents.values()].sort((a, b) =>
    String(a.hostname).localeCompare(String(b.hostname)));
  if (!agents.length) {
    fill(el.body, empty('No agent has registered yet.'));
    return;
  }
  const res = (a, name, fmt) => bar(a.used_resources[name], a.resources[name],
    { offered: a.offered_resources[name], format: fmt, label: name });
  fill(el.body, table(
    [{ label: 'Agent' }, { label: 'State' }, { label: 'CPUs', cls: 'bar-cell' },
      { label: 'Memory', cls: 'bar-cell' }, { label: 'Disk', cls: 'bar-cell' },
      { label: 'Tasks', num: true }, { label: 'Attributes' }],
    agents.map((a) => [
      [link(a.hostname, 'agents', a.id), idLabel(a.id)],
      pill(a.state),
      res(a, 'cpus', num), res(a, 'mem', mb), res(a, 'disk', mb),
      String((model.byAgent.get(a.id) || []).length),
      chips(a.attributes),
    ]), { cls: 'agents' }));
}

function renderFrameworks(el, model) {
  const fws = model.state.frameworks || [];
  if (!fws.length) {
    fill(el.body, empty('No framework is subscribed.'));
    return;
  }
  fill(el.body, table(
    [{ label: 'Framework' }, { label: 'State' }, { label: 'Roles' },
      { label: 'Share', cls: 'bar-cell' }, { label: 'Running', num: true },
      { label: 'CPUs', num: true }, { label: 'Memory', num: true }],
    fws.map((fw) => {
      const share = model.shares[fw.id] || {};
      const running = (fw.tasks || []).filter((t) => t.state === 'TASK_RUNNING').length;
      return [
        [link(fw.name || fw.id, 'frameworks', fw.id), idLabel(fw.id)],
        pill(fw.state),
        (fw.roles || []).map((r) => h('span', { class: 'chip' }, r)),
        shareBar(share.share, { weighted: share.weighted_share }),
        String(running),
        num(fw.used_resources && fw.used_resources.cpus),
        mb(fw.used_resources && fw.used_resources.mem),
      ];
    }), { cls: 'frameworks' }));
}

export function eventLine(event, model) {
  const d = event.data || {};
  const kind = event.type;
  let what = '';
  let state = '';
  if (kind === 'TASK_ADDED') {
    what = d.task_added.task.name || d.task_added.task.task_id.value;
    state = d.task_added.task.state;
  } else if (kind === 'TASK_UPDATED') {
    const status = d.task_updated.status;
    const fid = d.task_updated.framework_id.value;
    const found = model && model.tasks.concat(model.completed).find((e) =>
      e.framework.id === fid && e.task.id === status.task_id.value);
    what = found ? found.task.name : status.task_id.value;
    state = d.task_updated.state;
  } else if (kind.startsWith('AGENT_')) {
    const agent = (d.agent_added || d.agent_updated || {}).agent;
    const id = agent ? agent.agent_info.id.value : d.agent_removed.agent_id.value;
    const known = model && model.agents.get(id);
    what = agent ? agent.agent_info.hostname : (known ? known.hostname : id);
    state = kind === 'AGENT_REMOVED' ? 'unreachable' : agentState(agent);
  } else if (kind.startsWith('FRAMEWORK_')) {
    const fw = (d.framework_added || d.framework_updated || {}).framework;
    what = fw ? fw.framework_info.name : d.framework_removed.framework_info.name;
    state = kind === 'FRAMEWORK_REMOVED' ? 'completed' : (fw && fw.connected ? 'subscribed'
      : 'disconnected');
  }
  return { what, state };
}

// An agent of an AGENT_ADDED/UPDATED event (Mesos' GetAgents.Agent): the operator's
// drain or deactivation first, else whether it is connected.
function agentState(agent) {
  if (!agent) return 'disconnected';
  if (agent.drain_info) return agent.drain_info.state.toLowerCase();
  if (agent.deactivated) return 'deactivated';
  return agent.active ? 'active' : 'disconnected';
}

function renderFeed(el, store, model) {
  const events = store.events.slice(0, 25);
  if (!events.length) {
    fill(el.body, empty('Events appear here as they happen.'));
    return;
  }
  const seen = el.seen || new Set();
  fill(el.body, h('ul', { class: 'feed' }, events.map((event) => {
    const { what, state } = eventLine(event, model);
    const fresh = !seen.has(event.id);
    return h('li', { class: `${stateClass(state)}${fresh ? ' fresh' : ''}` },
      h('span', { class: 'dot' }),
      h('span', { class: 'what', title: what },
        h('span', { class: 'kind' }, event.type.toLowerCase().replace('_', ' ')), what,
        state ? h('span', { class: 'muted' }, ` → ${shortState(state)}`) : null),
      h('span', { class: 'when' }, ago(event.at)));
  })));
  el.seen = new Set(events.map((e) => e.id));
}

function renderTasks(el, model, query) {
  const q = query.trim().toLowerCase();
  const rows = model.tasks.filter(({ task }) => !q || [task.name, task.id, task.state]
    .some((v) => String(v).toLowerCase().includes(q)));
  rows.sort((a, b) => String(a.task.name).localeCompare(String(b.task.name)));
  if (!rows.length) {
    fill(el.body, empty(q ? 'No active task matches.' : 'No active task.'));
    return;
  }
  const shown = rows.slice(0, MAX_TASK_ROWS);
  fill(el.body, table(
    [{ label: 'Task' }, { label: 'State' }, { label: 'Health' }, { label: 'Framework' },
      { label: 'Agent' }, { label: 'CPUs', num: true }, { label: 'Memory', num: true },
      { label: 'Last change' }],
    shown.map(({ task, framework }) => {
      const agent = model.agents.get(task.agent_id);
      const since = task.statuses && task.statuses.length ? task.statuses.at(-1).timestamp : 0;
      return [
        [link(task.name || task.id, 'tasks', framework.id, task.id),
          h('span', { class: 'id' }, task.id)],
        pill(task.state), healthPill(task.healthy),
        link(framework.name || framework.id, 'frameworks', framework.id),
        agent ? link(agent.hostname, 'agents', agent.id) : task.agent_id,
        num(task.resources && task.resources.cpus), mb(task.resources && task.resources.mem),
        h('span', { class: 'nowrap muted' }, ago(since)),
      ];
    }), { cls: 'tasks' }),
    rows.length > shown.length ? h('div', { class: 'table-foot' },
      `Showing ${shown.length} of ${rows.length} tasks; filter to narrow.`) : null);
}
