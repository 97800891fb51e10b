// Reusable pieces of the pages: cards, tables, pills, bars.

import { h } from './dom.js';
import { pct, shortId, shortState, stateClass } from './format.js';

export function card(title, { hint, actions, body, flush = false, id } = {}) {
  const head = h('div', { class: 'card-head' },
    h('h2', null, title, hint ? h('span', { class: 'hint' }, ' · ', hint) : null),
    actions || null);
  const content = h('div', { class: flush ? 'card-body flush' : 'card-body' }, body || null);
  const el = h('section', { class: 'card', id }, head, content);
  el.body = content;
  el.hint = head.querySelector('.hint');
  return el;
}

export function pill(state, { big = false, label } = {}) {
  return h('span', { class: `pill ${stateClass(state)}${big ? ' big' : ''}`, title: state },
    label ?? shortState(state));
}

export function healthPill(healthy) {
  if (healthy === undefined || healthy === null) return null;
  return pill(healthy ? 'healthy' : 'unhealthy');
}

export function empty(text) {
  return h('div', { class: 'empty' }, text);
}

/** columns: [{label, num}]; rows: arrays of cells (nodes or text). */
export function table(columns, rows, { cls = '' } = {}) {
  return h('div', { class: 'table-wrap' },
    h('table', { class: cls },
      h('thead', null, h('tr', null, columns.map((c) =>
        h('th', { class: c.num ? 'num' : null }, c.label)))),
      h('tbody', null, rows.map((cells) => h('tr', null, cells.map((cell, i) =>
        h('td', { class: columns[i] && columns[i].num ? 'num' : (columns[i] && columns[i].cls) },
          cell)))))));
}

export function kv(pairs) {
  return h('dl', { class: 'kv' }, pairs.filter((p) => p).flatMap(([k, v]) => [
    h('dt', null, k), h('dd', null, v === undefined || v === null || v === '' ? '—' : v)]));
}

function level(fraction) {
  if (fraction >= 0.9) return 'lvl-high';
  if (fraction >= 0.7) return 'lvl-mid';
  return '';
}

/** Utilisation: used (solid) and offered (striped) out of total. */
export function bar(used, total, { offered = 0, format = String, label = '', levels = true } = {}) {
  const t = Number(total) || 0;
  const u = t ? Math.min(1, (Number(used) || 0) / t) : 0;
  const o = t ? Math.min(1 - u, (Number(offered) || 0) / t) : 0;
  const fill = h('span', { class: `bar-fill ${levels ? level(u) : ''}`,
    style: { width: `${u * 100}%` } });
  const offer = h('span', { class: 'bar-offer', style: { width: `${o * 100}%` } });
  const title = `${label ? label + ': ' : ''}${format(used)} of ${format(total)} used` +
    (offered ? `, ${format(offered)} offered` : '');
  return h('div', { class: 'bar', title },
    h('div', { class: 'bar-track' }, fill, offer),
    h('div', { class: 'bar-label' },
      h('span', null, h('b', null, format(used)), ` / ${format(total)}`),
      h('span', null, t ? pct(u) : '—')));
}

export function shareBar(share, { weighted } = {}) {
  const s = Math.max(0, Math.min(1, Number(share) || 0));
  return h('div', { class: 'bar share', title: `dominant share ${pct(s)}` },
    h('div', { class: 'bar-track' }, h('span', { class: 'bar-fill', style: { width: `${s * 100}%` } })),
    h('div', { class: 'bar-label' },
      h('span', null, h('b', null, pct(s)), ' dominant share'),
      weighted !== undefined && weighted !== s ? h('span', null, `weighted ${pct(weighted)}`) : null));
}

/** A bar of counts by state plus its legend. */
export function stacked(counts, order) {
  const total = order.reduce((sum, s) => sum + (counts[s] || 0), 0);
  const present = order.filter((s) => counts[s]);
  return h('div', null,
    h('div', { class: 'stacked', title: `${total} tasks` }, present.map((s) =>
      h('span', { class: stateClass(s), style: { width: `${(counts[s] / total) * 100}%` },
        title: `${shortState(s)}: ${counts[s]}` }))),
    h('div', { class: 'legend' }, present.length ? present.map((s) =>
      h('span', { class: `item ${stateClass(s)}` }, h('span', { class: 'swatch' }),
        shortState(s), h('span', { class: 'count' }, counts[s])))
      : h('span', { class: 'muted' }, 'No tasks yet.')));
}

export function chips(map) {
  const entries = Object.entries(map || {});
  if (!entries.length) return h('span', { class: 'muted' }, '—');
  return entries.map(([k, v]) => h('span', { class: 'chip' }, h('b', null, k, '='), v));
}

export function pageHead(title, { crumbs = [], sub, badges = [] } = {}) {
  return h('div', { class: 'page-head' }, h('div', null,
    crumbs.length ? h('div', { class: 'crumbs' }, crumbs.map((c) => h('span', null, c))) : null,
    h('div', { class: 'title' }, h('h1', null, title), badges),
    sub ? h('div', { class: 'sub' }, sub) : null));
}

/** A record's id under its name, shortened, the full id as the tooltip. */
export function idLabel(id) {
  return h('span', { class: 'id', title: id }, shortId(id));
}
