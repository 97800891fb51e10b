// One agent: its resources as bars, attributes, and the tasks it runs.

import { h, fill, link } from '../dom.js';
import { ago, mb, num, time } from '../format.js';
import { bar, card, chips, empty, healthPill, kv, pageHead, pill, table } from '../components.js';

export function mount(root, _ctx, [agentId]) {
  return {
    update(model) {
      const agent = model.agents.get(agentId);
      if (!agent) {
        fill(root, pageHead('Agent not found', { crumbs: [link('Cluster', '')] }),
          empty(`The master knows no agent ${agentId}.`));
        return;
      }
      const res = (name, fmt) => bar(agent.used_resources[name], agent.resources[name],
        { offered: agent.offered_resources[name], format: fmt, label: name });
      const resources = card('Resources', { hint: 'solid: used by tasks · striped: offered',
        body: h('div', { class: 'stack' },
          h('div', null, h('h3', null, 'CPUs'), res('cpus', num)),
          h('div', null, h('h3', null, 'Memory'), res('mem', mb)),
          h('div', null, h('h3', null, 'Disk'), res('disk', mb)),
          agent.resources.gpus ? h('div', null, h('h3', null, 'GPUs'), res('gpus', num)) : null,
          agent.resources.ports ? kv([['Ports', h('code', null, agent.resources.ports)]]) : null) });
      const details = card('Details', { body: kv([
        ['ID', h('code', null, agent.id)],
        ['Address', `${agent.address}:${agent.port}`],
        ['Version', agent.version],
        ['Containerizers', (agent.containerizers || []).join(', ')],
        ['Registered', `${time(agent.registered_time)} (${ago(agent.registered_time)})`],
        agent.reregistered_time ? ['Re-registered', time(agent.reregistered_time)] : null,
        agent.unreachable_time ? ['Unreachable since', time(agent.unreachable_time)] : null,
        ['Attributes', chips(agent.attributes)],
      ]) });
      const active = model.byAgent.get(agentId) || [];
      const done = model.completed.filter((e) => e.task.agent_id === agentId).slice(0, 50);
      fill(root,
        pageHead(agent.hostname, { crumbs: [link('Cluster', ''), 'Agents'],
          badges: [pill(agent.state, { big: true })], sub: agent.id }),
        h('div', { class: 'grid grid-2' }, resources, details),
        h('div', { style: { marginTop: '1rem' } },
          card('Tasks', { hint: `${active.length} active`, flush: true,
            body: taskTable(active, 'No task runs here.') })),
        h('div', { style: { marginTop: '1rem' } },
          card('Completed tasks', { hint: 'most recent first', flush: true,
            body: taskTable(done, 'No completed task yet.') })));
    },
    unmount() {},
  };
}

export function taskTable(entries, emptyText) {
  if (!entries.length) return empty(emptyText);
  return table(
    [{ label: 'Task' }, { label: 'State' }, { label: 'Health' }, { label: 'Framework' },
      { label: 'CPUs', num: true }, { label: 'Memory', num: true }, { label: 'Last change' }],
    entries.map(({ task, framework }) => [
      [link(task.name || task.id, 'tasks', framework.id, task.id),
        h('span', { class: 'id' }, task.id)],
      pill(task.state), healthPill(task.healthy),
      link(framework.name || framework.id, 'frameworks', framework.id),
      num(task.resources && task.resources.cpus), mb(task.resources && task.resources.mem),
      h('span', { class: 'muted nowrap' },
        ago(task.statuses && task.statuses.length ? task.statuses.at(-1).timestamp : 0)),
    ]));
}
