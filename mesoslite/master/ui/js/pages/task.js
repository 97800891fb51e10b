// One task: state and health, details, status history, and its sandbox: the file
// listing and a live tail of a log, read through the master's sandbox proxy.

import { h, fill, link } from '../dom.js';
import { ago, bytes, mb, num, shortState, stateClass, time } from '../format.js';
import { card, chips, empty, healthPill, kv, pageHead, pill, table } from '../components.js';
import { findTask } from '../store.js';

const TAIL_BYTES = 64 * 1024;
const CHUNK = 256 * 1024;
const MAX_CHARS = 400 * 1024;
const POLL_MS = 1000;

export function mount(root, _ctx, [frameworkId, taskId]) {
  const head = h('div');
  const details = card('Details');
  const history = card('Status history');
  const files = card('Sandbox', { flush: true });
  const logCard = card('Log', { flush: true });
  fill(root, head,
    h('div', { class: 'grid grid-2' }, details, history),
    h('div', { class: 'grid grid-3-1', style: { marginTop: '1rem' } }, logCard, files));
  const sandbox = new Sandbox(files, logCard);
  let lastListing = 0;

  return {
    update(model) {
      const found = findTask(model, frameworkId, taskId);
      if (!found) {
        fill(head, pageHead('Task not found', { crumbs: [link('Cluster', '')] }));
        fill(details.body, empty(`The master knows no task ${taskId} of framework ` +
          `${frameworkId} (completed tasks are kept for a while only).`));
        return;
      }
      const { task, framework } = found;
      const agent = model.agents.get(task.agent_id);
      fill(head, pageHead(task.name || task.id, {
        crumbs: [link('Cluster', ''), link(framework.name || framework.id, 'frameworks',
          framework.id), 'Tasks'],
        badges: [pill(task.state, { big: true }), healthPill(task.healthy)], sub: task.id }));
      fill(details.body, kv([
        ['Task ID', h('code', null, task.id)],
        ['Framework', link(framework.name || framework.id, 'frameworks', framework.id)],
        ['Agent', agent ? [link(agent.hostname, 'agents', agent.id), ' ', pill(agent.state)]
          : task.agent_id],
        ['Role', task.role],
        ['Resources', [`${num(task.resources.cpus)} cpus · ${mb(task.resources.mem)}`,
          task.resources.disk ? ` · ${mb(task.resources.disk)} disk` : '',
          task.resources.ports ? ` · ports ${task.resources.ports}` : '']],
        ['Health', task.healthy === undefined ? 'no health check'
          : (task.healthy ? 'healthy' : 'unhealthy')],
        ['Container', task.container ? String(task.container.type || '').toLowerCase()
          : 'process'],
        ['Labels', chips(Object.fromEntries(((task.labels && task.labels.labels) || [])
          .map((l) => [l.key, l.value ?? '']))) ],
        task.message ? ['Message', task.message] : null,
      ]));
      renderHistory(history, task);
      const now = Date.now();
      if (now - lastListing > 2000 || sandbox.needsListing) {
        lastListing = now;
        sandbox.show(agent, framework.id, task);
      }
    },
    unmount() {
      sandbox.stop();
    },
  };
}

function renderHistory(el, task) {
  const statuses = task.statuses || [];
  if (!statuses.length) {
    fill(el.body, empty('No status yet.'));
    return;
  }
  const first = statuses[0].timestamp;
  fill(el.body, h('ol', { class: 'timeline' }, statuses.map((s, i) =>
    h('li', { class: stateClass(s.state) },
      h('strong', null, shortState(s.state)),
      h('span', { class: 'when' }, time(s.timestamp),
        i ? ` (+${num(s.timestamp - first, 2)} s)` : ` (${ago(s.timestamp)})`),
      i === statuses.length - 1 && task.message ? h('div', { class: 'msg' }, task.message)
        : null))));
}

/** The sandbox listing and the log tail; both survive the page's re-renders. */
class Sandbox {
  constructor(filesCard, logCard) {
    this.filesCard = filesCard;
    this.logCard = logCard;
    this.base = null;
    this.current = null;
    this.available = new Set();
    this.needsListing = true;
    this.tabs = h('div', { class: 'tabs' });
    this.follow = h('button', { class: 'on', type: 'button', title: 'Keep the newest lines in view',
      onclick: () => {
        this.following = !this.following;
        this.follow.classList.toggle('on', this.following);
      } }, 'Follow');
    this.following = true;
    this.pre = h('pre', { class: 'log', id: 'log' });
    fill(logCard.querySelector('.card-head'), h('h2', null, 'Log'),
      h('div', { class: 'toolbar' }, this.tabs, this.follow));
    fill(logCard.body, this.pre);
    fill(this.pre, h('span', { class: 'note' }, 'Waiting for the sandbox…'));
    fill(filesCard.body, empty('Reading the sandbox…'));
    this.timer = null;
    this.generation = 0;
  }

  async show(agent, frameworkId, task) {
    if (!agent || agent.state !== 'active') {
      this.needsListing = true;
      fill(this.filesCard.body, empty('The agent is not connected: its sandbox cannot be ' +
        'read now.'));
      return;
    }
    const ids = [agent.id, frameworkId, task.id].map(encodeURIComponent).join('/');
    const base = `/master/sandbox/${ids}`;
    const browse = `/master/browse/${ids}`;
    this.base = base;
    let listing;
    try {
      const response = await fetch(browse, { headers: { Accept: 'application/json' } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      listing = await response.json();
    } catch (err) {
      this.needsListing = true;
      fill(this.filesCard.body, empty(`Cannot read the sandbox (${err.message}).`));
      return;
    }
    if (!listing.exists) {
      this.needsListing = true;
      fill(this.filesCard.body, empty('The sandbox does not exist yet.'));
      return;
    }
    this.needsListing = false;
    const entries = listing.entries || [];
    this.available = new Set(entries.filter((e) => !e.dir).map((e) => e.path));
    fill(this.filesCard.body, entries.length ? table(
      [{ label: 'File' }, { label: 'Size', num: true }, { label: 'Modified' }],
      entries.map((e) => [
        e.dir ? h('span', null, e.path, '/') : h('a', { href: `${base}/${encodePath(e.path)}`,
          onclick: (ev) => {
            ev.preventDefault();
            this.open(e.path);
          } }, e.path),
        bytes(e.size), h('span', { class: 'muted nowrap' }, ago(e.mtime))]),
      { cls: 'files' }) : empty('The sandbox is empty.'));
    const logs = ['stdout', 'stderr'].filter((f) => this.available.has(f));
    fill(this.tabs, logs.map((f) => h('button', { type: 'button',
      class: f === this.current ? 'on' : null, onclick: () => this.open(f) }, f)));
    if (!this.current && logs.length) this.open(logs[0]);
  }

  open(path) {
    if (!this.available.has(path) || !this.base) return;
    this.current = path;
    for (const b of this.tabs.children) b.classList.toggle('on', b.textContent === path);
    this.generation += 1;
    clearTimeout(this.timer);
    this.offset = null;
    this.decoder = new TextDecoder();
    fill(this.pre);
    this.poll(this.generation);
  }

  async poll(generation) {
    if (generation !== this.generation) return;
    const url = `${this.base}/${encodePath(this.current)}`;
    let delay = POLL_MS;
    try {
      if (this.offset === null) {
        const head = await fetch(`${url}?offset=0&length=0`);
        const size = Number(head.headers.get('X-File-Size')) || 0;
        this.offset = Math.max(0, size - TAIL_BYTES);
        if (this.offset > 0) this.append(`… (${bytes(this.offset)} earlier)\n`, true);
      }
      const response = await fetch(`${url}?offset=${this.offset}&length=${CHUNK}`);
      if (generation !== this.generation) return;
      if (response.ok) {
        const data = await response.arrayBuffer();
        this.offset += data.byteLength;
        if (data.byteLength) this.append(this.decoder.decode(data, { stream: true }));
        if (data.byteLength === CHUNK) delay = 0;
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
    if (this.following) this.pre.scrollTop = this.pre.scrollHeight;
  }

  stop() {
    this.generation += 1;
    clearTimeout(this.timer);
  }
}

function encodePath(path) {
  return String(path).split('/').map(encodeURIComponent).join('/');
}
