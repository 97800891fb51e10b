// What the services and batch pages share: their stylesheet, inline SVG built with
// DOM calls, a framework's event stream through the master, coalesced reloads, a
// sandbox log tail, and a few widgets.  Data only ever reaches the page as text
// nodes and attribute values.

import { h, fill, link } from '../js/dom.js';
import { bytes } from '../js/format.js';

const SVG_NS = 'http://www.w3.org/2000/svg';

export function ensureStyles() {
  if (document.getElementById('plugin-styles')) return;
  document.head.append(h('link', { id: 'plugin-styles', rel: 'stylesheet',
    href: '/ui/plugins/plugins.css' }));
}

/** svg('rect', {x: 1, class: 'box'}, child...): an SVG element; strings become text. */
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else {
      el.setAttribute(key, String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** ISO-8601 text (Marathon's times) or epoch seconds -> epoch seconds (null if neither). */
export function seconds(value) {
  if (value === null || value === undefined || value === '') return null;
  if (typeof value === 'number') return value;
  const parsed = Date.parse(value);
  return Number.isNaN(parsed) ? null : parsed / 1000;
}

export function apiUrl(frameworkId, path) {
  return `/master/frameworks/${encodeURIComponent(frameworkId)}/api/` +
    String(path).replace(/^\/+/, '');
}

/**
 * A framework's Server-Sent Events through the master's proxy.  Every event (of
 * ``types``, plus a reset) calls ``onEvent(type, data)``; the browser resumes with
 * Last-Event-ID after a disconnection; a stream refused outright is retried.
 */
export class FrameworkFeed {
  constructor(frameworkId, path, types, onEvent) {
    this.url = apiUrl(frameworkId, path);
    this.types = [...types, 'event_stream_reset'];
    this.onEvent = onEvent;
    this.status = 'connecting';
    this.statusListeners = new Set();
    this.source = null;
    this.retry = null;
    this.closed = false;
    this.connect();
  }

  connect() {
    if (this.closed) return;
    const source = new EventSource(this.url);
    this.source = source;
    source.addEventListener('open', () => {
      this.setStatus('live');
      this.onEvent('open', null);
    });
    source.addEventListener('error', () => {
      if (source.readyState === EventSource.CLOSED) {
        this.setStatus('down');
        clearTimeout(this.retry);
        this.retry = setTimeout(() => this.connect(), 3000);
      } else {
        this.setStatus('reconnecting');
      }
    });
    for (const type of this.types) {
      source.addEventListener(type, (message) => {
        let data = null;
        try {
          data = JSON.parse(message.data);
        } catch {
          data = null;
        }
        this.onEvent(type, data);
      });
    }
  }

  onStatus(fn) {
    this.statusListeners.add(fn);
    fn(this.status);
  }

  setStatus(status) {
    this.status = status;
    for (const fn of this.statusListeners) fn(status);
  }

  close() {
    this.closed = true;
    clearTimeout(this.retry);
    if (this.source) this.source.close();
  }
}

/** The small "events: live" badge of a framework page. */
export function liveBadge(feed) {
  const text = h('span', null, 'connecting');
  const el = h('span', { class: 'fw-live', title: 'The framework\u2019s event stream' },
    h('span', { class: 'dot' }), 'events: ', text);
  feed.onStatus((status) => {
    el.classList.toggle('is-live', status === 'live');
    el.classList.toggle('is-down', status === 'down');
    text.textContent = status;
  });
  return el;
}

/**
 * Runs ``load()`` now, when asked (coalesced: one in flight, one more after it if
 * asked meanwhile) and every ``poll`` ms (what no event announces: queue reasons,
 * deadlines).  ``onError(message | null)`` after every load.
 */
export class Refresher {
  constructor(load, { poll = 5000, onError = () => {} } = {}) {
    this.load = load;
    this.onError = onError;
    this.poll = poll;
    this.inflight = false;
    this.again = false;
    this.timer = null;
    this.interval = null;
    this.stopped = false;
  }

  start() {
    this.run();
    this.interval = setInterval(() => this.soon(), this.poll);
  }

  soon(delay = 40) {
    if (this.timer !== null || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.run();
    }, delay);
  }

  async run() {
    if (this.stopped) return;
    if (this.inflight) {
      this.again = true;
      return;
    }
    this.inflight = true;
    try {
      await this.load();
      if (!this.stopped) this.onError(null);
    } catch (err) {
      if (!this.stopped) this.onError(err instanceof Error ? err.message : String(err));
    } finally {
      this.inflight = false;
    }
    if (this.again) {
      this.again = false;
      this.soon(0);
    }
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.interval);
  }
}

/** An error line above a page's cards (null: remove it). */
export function errorLine(container) {
  const el = h('div', { class: 'error-box plugin-error', hidden: true });
  container.prepend(el);
  return (message) => {
    el.hidden = !message;
    fill(el, message ? `Cannot read the framework\u2019s API: ${message}. Retrying\u2026` : '');
  };
}

/** A bar of parts: [{cls, value, title}] out of ``total`` (CSS classes colour them). */
export function partsBar(parts, total, cls = 'inst-track') {
  const t = Math.max(1, Number(total) || 0);
  return h('div', { class: cls }, parts.filter((p) => p.value > 0).map((p) =>
    h('span', { class: p.cls, title: p.title,
      style: { width: `${Math.min(100, (p.value / t) * 100)}%` } })));
}

function encodePath(path) {
  return String(path).split('/').map(encodeURIComponent).join('/');
}

const TAIL_BYTES = 64 * 1024;
const CHUNK = 256 * 1024;
const MAX_CHARS = 300 * 1024;

/**
 * The tail of a task's sandbox file, read through the master's proxy
 * (/master/browse first, so nothing is asked of a sandbox that does not exist
 * yet), polled while ``follow()`` says so.
 */
export class LogTail {
  constructor(pre) {
    this.pre = pre;
    this.generation = 0;
    this.timer = null;
  }

  open({ agentId, frameworkId, taskId, file = 'stdout', follow = () => true }) {
    this.stop();
    const generation = ++this.generation;
    const ids = [agentId, frameworkId, taskId].map(encodeURIComponent).join('/');
    this.browse = `/master/browse/${ids}`;
    this.base = `/master/sandbox/${ids}/${encodePath(file)}`;
    this.file = file;
    this.follow = follow;
    this.offset = null;
    this.decoder = new TextDecoder();
    fill(this.pre, h('span', { class: 'note' }, 'Reading the sandbox\u2026'));
    this.poll(generation);
  }

  async poll(generation) {
    if (generation !== this.generation) return;
    let delay = this.follow() ? 1000 : 4000;
    try {
      if (this.offset === null) {
        const listing = await (await fetch(this.browse,
          { headers: { Accept: 'application/json' } })).json();
        if (generation !== this.generation) return;
        const entry = (listing.entries || []).find((e) => e.path === this.file && !e.dir);
        if (!listing.exists || !entry) {
          fill(this.pre, h('span', { class: 'note' }, listing.exists
            ? `No ${this.file} in the sandbox yet.` : 'The sandbox does not exist yet.'));
        } else {
          this.offset = Math.max(0, (Number(entry.size) || 0) - TAIL_BYTES);
          fill(this.pre);
          if (this.offset > 0) this.append(`\u2026 (${bytes(this.offset)} earlier)\n`, true);
        }
      }
      if (this.offset !== null) {
        const response = await fetch(`${this.base}?offset=${this.offset}&length=${CHUNK}`);
        if (generation !== this.generation) return;
        if (response.ok) {
          const data = await response.arrayBuffer();
          this.offset += data.byteLength;
          if (data.byteLength) this.append(this.decoder.decode(data, { stream: true }));
          if (data.byteLength === CHUNK) delay = 0;
        }
      }
    } catch {
      // the next poll tries again
    }
    if (generation === this.generation) this.timer = setTimeout(() => this.poll(generation), delay);
  }

  append(text, note = false) {
    this.pre.appendChild(note ? h('span', { class: 'note' }, text) : document.createTextNode(text));
    let size = this.pre.textContent.length;
    while (size > MAX_CHARS && this.pre.firstChild) {
      size -= this.pre.firstChild.textContent.length;
      this.pre.removeChild(this.pre.firstChild);
    }
    this.pre.scrollTop = this.pre.scrollHeight;
  }

  stop() {
    this.generation += 1;
    clearTimeout(this.timer);
  }
}


/**
 * Mount a framework page: its container (class ``cls``), the live feed of the
 * framework's ``eventsPath`` stream (``events`` trigger a reload), the refresher and
 * its error line; ``load`` fetches and draws.
 */
export function livePage(root, ctx, { cls, eventsPath, events }, load) {
  const page = h('div', { class: cls });
  fill(root, page);
  const feed = new FrameworkFeed(ctx.framework.id, eventsPath, events, () => refresher.soon());
  const showError = errorLine(page);
  const refresher = new Refresher(load, { poll: 3000, onError: showError });
  return { page, feed, refresher };
}

/** Breadcrumbs: the cluster, the framework, then ``more``. */
export function crumbs(ctx, ...more) {
  const fw = ctx.framework;
  return [link('Cluster', ''), link(fw.name || fw.id, 'frameworks', fw.id), ...more];
}
