// One framework: its details, DRF share per role, its tasks, and the tabs of the
// plugins that serve it (the services and batch frameworks' own pages).

import { h, fill, link, route } from '../dom.js';
import { ago, mb, num, time } from '../format.js';
import { bar, card, empty, kv, pageHead, pill, shareBar, table } from '../components.js';
import { pluginsFor } from '../plugins.js';
import { taskTable } from './agent.js';

export function mount(root, _ctx, [frameworkId]) {
  return {
    update(model) {
      const fw = model.frameworks.get(frameworkId);
      if (!fw) {
        fill(root, pageHead('Framework not found', { crumbs: [link('Cluster', '')] }),
          empty(`The master knows no framework ${frameworkId}.`));
        return;
      }
      const share = model.shares[fw.id] || {};
      const total = (model.state.allocator && model.state.allocator.total
        && model.state.allocator.total.scalars) || {};
      const tabs = pluginsFor(fw).map((p) =>
        h('a', { href: route('x', p.id, fw.id) }, p.title));
      const roles = Object.entries(share.roles || {});
      const held = (name, format) => bar((fw.used_resources || {})[name], total[name],
        { offered: (fw.offered_resources || {})[name], format, levels: false, label: name });
      const shares = card('Share of the cluster', {
        hint: 'DRF · solid: used by tasks · striped: offered',
        body: h('div', { class: 'stack' },
          shareBar(share.share, { weighted: share.weighted_share }),
          roles.length > 1 ? table([{ label: 'Role' }, { label: 'Share', cls: 'bar-cell' }],
            roles.map(([role, entry]) => [role, shareBar(entry.share)])) : null,
          h('div', null, h('h3', null, 'CPUs'), held('cpus', num)),
          h('div', null, h('h3', null, 'Memory'), held('mem', mb))) });
      const details = card('Details', { body: kv([
        ['ID', h('code', null, fw.id)],
        ['User', fw.user],
        ['Principal', fw.principal],
        ['Roles', (fw.roles || []).join(', ')],
        ['Capabilities', (fw.capabilities || []).join(', ')],
        ['Registered', `${time(fw.registered_time)} (${ago(fw.registered_time)})`],
        fw.unregistered_time ? ['Removed', time(fw.unregistered_time)] : null,
        ['Failover timeout', fw.failover_timeout ? `${num(fw.failover_timeout)} s` : '—'],
        ['Suppressed roles', (fw.suppressed_roles || []).join(', ')],
        ['Offers held', String((fw.offers || []).length)],
        ['Web UI', fw.webui_url ? h('a', { href: fw.webui_url, rel: 'noopener noreferrer',
          target: '_blank' }, fw.webui_url) : ''],
      ]) });
      const active = model.tasks.filter((e) => e.framework.id === fw.id);
      const done = model.completed.filter((e) => e.framework.id === fw.id).slice(0, 50);
      fill(root,
        pageHead(fw.name || fw.id, { crumbs: [link('Cluster', ''), 'Frameworks'],
          badges: [pill(fw.state, { big: true })], sub: fw.id }),
        tabs.length ? h('div', { class: 'plugin-tabs' }, tabs) : null,
        h('div', { class: 'grid grid-2' }, shares, details),
        h('div', { style: { marginTop: '1rem' } },
          card('Tasks', { hint: `${active.length} active`, flush: true,
            body: taskTable(active, 'No active task.') })),
        h('div', { style: { marginTop: '1rem' } },
          card('Completed tasks', { hint: 'most recent first', flush: true,
            body: taskTable(done, 'No completed task yet.') })));
    },
    unmount() {},
  };
}
