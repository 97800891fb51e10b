// "Why is this waiting?": what the frameworks say about their queues.  The master
// asks every framework that announced a webui_url (GET /master/queues tries its
// v2/queue, Marathon's shape, then mesoslite/v1/queue, the batch framework's); a plugin
// matching the framework may parse the answer itself (parseQueue).

import { h, fill, link } from './dom.js';
import { ago, duration } from './format.js';
import { empty } from './components.js';
import { pluginsFor } from './plugins.js';

const POLL_MS = 3000;

export function mountWaiting(container, store) {
  let timer = null;
  let stopped = false;

  async function poll() {
    if (stopped) return;
    try {
      const response = await fetch('/master/queues', { headers: { Accept: 'application/json' } });
      if (response.ok) render(await response.json());
    } catch {
      // the next poll tries again
    }
    if (!stopped) timer = setTimeout(poll, POLL_MS);
  }

  function render(answer) {
    const model = store.model;
    const rows = [];
    for (const entry of answer.frameworks || []) {
      const fw = model && model.frameworks.get(entry.framework_id);
      const items = entry.queue ? parseQueue(entry, fw) : [];
      for (const item of items) rows.push(itemView(item, entry));
    }
    if (rows.length) {
      fill(container, rows);
    } else {
      const asked = (answer.frameworks || []).length;
      fill(container, empty(asked
        ? 'Nothing is waiting: every framework placed what it wanted to run.'
        : 'No framework publishes a queue yet (frameworks that announce a webui_url ' +
          'with a /v2/queue or /v1/queue endpoint appear here).'));
    }
  }

  poll();
  return {
    update() {},
    unmount() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

function itemView(item, entry) {
  return h('div', { class: 'waiting-item' },
    h('div', { class: 'head' },
      h('span', { class: 'what' }, item.what,
        item.count ? h('span', { class: 'muted' }, ` × ${item.count}`) : null),
      h('span', { class: 'fw' }, link(entry.name || entry.framework_id, 'frameworks',
        entry.framework_id), item.since ? ` · waiting since ${ago(item.since)}` : '')),
    item.reasons.length
      ? h('ul', { class: 'reasons' }, item.reasons.map((r) => h('li', null, r)))
      : h('div', { class: 'muted small' }, item.status || 'waiting for offers'));
}

export function parseQueue(entry, framework) {
  for (const p of framework ? pluginsFor(framework) : []) {
    if (typeof p.parseQueue === 'function') return p.parseQueue(entry.queue, entry.path);
  }
  const raw = entry.queue;
  const items = Array.isArray(raw) ? raw : (raw && Array.isArray(raw.queue) ? raw.queue : []);
  return items.map((item) => (item && (item.app || item.pod) ? marathonItem(item)
    : genericItem(item || {})));
}

function seconds(value) {
  if (typeof value === 'number') return value;
  const parsed = Date.parse(value);
  return Number.isNaN(parsed) ? null : parsed / 1000;
}

/** Marathon's /v2/queue item. */
export function marathonItem(item) {
  const spec = item.app || item.pod || {};
  const summary = item.processedOffersSummary || {};
  const reasons = [];
  if (summary.waitingReason) reasons.push(String(summary.waitingReason));
  if (summary.unplacedReason && summary.unplacedReason !== summary.waitingReason) {
    reasons.push(String(summary.unplacedReason));
  }
  for (const r of summary.rejectSummaryLastOffers || []) {
    if (r.declined > 0) reasons.push(`${r.reason}: ${r.declined} of ${r.processed} offers`);
  }
  const left = item.delay && item.delay.timeLeftSeconds;
  if (left > 0) reasons.push(`backing off after failures: ${duration(left)} left`);
  return { what: String(spec.id || 'app'), count: item.count, since: seconds(item.since),
    reasons };
}

/** Anything else: the batch framework's /mesoslite/v1/queue, or {id|name, why|reason|reasons}. */
export function genericItem(item) {
  const parts = [item.job, item.run && `run ${item.run}`, item.step && `step ${item.step}`];
  const what = item.id || item.name || parts.filter(Boolean).join(' · ') || 'item';
  const reasons = [item.why, item.reason, ...(Array.isArray(item.reasons) ? item.reasons : [])]
    .filter(Boolean).map(String);
  const count = Array.isArray(item.tasks) ? item.tasks.length : item.count;
  return { what: String(what), count, since: item.since ? seconds(item.since) : null,
    status: item.status ? String(item.status) : '', reasons };
}
