// The dashboard's data: /master/state, re-read when the master's event stream
// (/master/events, Server-Sent Events) says something changed.  Reads are
// coalesced: at most one in flight, another right after it if events came
// meanwhile, so a burst of events costs two reads, and a change shows within a
// fraction of a second.

export const EVENT_TYPES = [
  'TASK_ADDED', 'TASK_UPDATED', 'AGENT_ADDED', 'AGENT_UPDATED', 'AGENT_REMOVED',
  'FRAMEWORK_ADDED', 'FRAMEWORK_UPDATED', 'FRAMEWORK_REMOVED',
];
const MAX_EVENTS = 60;
const SAFETY_REFRESH_MS = 10000;

export class Store {
  constructor() {
    this.model = null;
    this.error = null;
    this.events = []; // newest first: {id, type, data, at}
    this.status = 'connecting';
    this._listeners = new Set();
    this._statusListeners = new Set();
    this._inflight = false;
    this._again = false;
    this._timer = null;
  }

  start() {
    this._connect();
    this.refresh();
    setInterval(() => this.refreshSoon(), SAFETY_REFRESH_MS);
  }

  subscribe(fn) {
    this._listeners.add(fn);
    return () => this._listeners.delete(fn);
  }

  onStatus(fn) {
    this._statusListeners.add(fn);
    fn(this.status);
  }

  _setStatus(status) {
    this.status = status;
    for (const fn of this._statusListeners) fn(status);
  }

  _connect() {
    // the newest events first (for the feed), then live; reconnects resume by id
    const source = new EventSource(`/master/events?backlog=${MAX_EVENTS}`);
    source.addEventListener('open', () => {
      this._setStatus('live');
      this.refreshSoon();
    });
    source.addEventListener('error', () => {
      this._setStatus(source.readyState === EventSource.CLOSED ? 'down' : 'reconnecting');
    });
    for (const type of EVENT_TYPES) {
      source.addEventListener(type, (e) => this._onEvent(type, e));
    }
    source.addEventListener('event_stream_reset', () => this.refreshSoon());
  }

  _onEvent(type, message) {
    let data = null;
    try {
      data = JSON.parse(message.data);
    } catch {
      return;
    }
    const at = typeof data.at === 'number' ? data.at : Date.now() / 1000;
    this.events.unshift({ id: message.lastEventId, type, data, at });
    if (this.events.length > MAX_EVENTS) this.events.length = MAX_EVENTS;
    this.refreshSoon();
  }

  refreshSoon(delay = 60) {
    if (this._timer !== null) return;
    this._timer = setTimeout(() => {
      this._timer = null;
      this.refresh();
    }, delay);
  }

  async refresh() {
    if (this._inflight) {
      this._again = true;
      return;
    }
    this._inflight = true;
    try {
      const response = await fetch('/master/state', { headers: { Accept: 'application/json' } });
      if (!response.ok) throw new Error(`/master/state answered ${response.status}`);
      this.model = buildModel(await response.json());
      this.error = null;
    } catch (err) {
      this.error = err instanceof Error ? err.message : String(err);
    } finally {
      this._inflight = false;
    }
    for (const fn of this._listeners) fn(this.model);
    if (this._again) {
      this._again = false;
      this.refreshSoon(0);
    }
  }
}

/** Indexes over /master/state that every page uses. */
export function buildModel(state) {
  const agents = new Map();
  for (const agent of state.slaves || []) agents.set(agent.id, agent);
  const frameworks = new Map();
  const tasks = [];
  const completed = [];
  for (const fw of state.frameworks || []) {
    frameworks.set(fw.id, fw);
    for (const task of [...(fw.tasks || []), ...(fw.unreachable_tasks || [])]) {
      tasks.push({ task, framework: fw });
    }
    for (const task of fw.completed_tasks || []) completed.push({ task, framework: fw });
  }
  for (const fw of state.completed_frameworks || []) {
    if (!frameworks.has(fw.id)) frameworks.set(fw.id, fw);
  }
  const byAgent = new Map();
  for (const entry of tasks) {
    const list = byAgent.get(entry.task.agent_id) || [];
    list.push(entry);
    byAgent.set(entry.task.agent_id, list);
  }
  const lastTime = (t) => (t.statuses && t.statuses.length ? t.statuses.at(-1).timestamp : 0);
  completed.sort((a, b) => lastTime(b.task) - lastTime(a.task));
  return {
    state, agents, frameworks, tasks, completed, byAgent,
    shares: (state.allocator && state.allocator.frameworks) || {},
    at: Date.now() / 1000,
  };
}

/** A task by framework and task id, active or completed. */
export function findTask(model, frameworkId, taskId) {
  const match = (e) => e.framework.id === frameworkId && e.task.id === taskId;
  return model.tasks.find(match) || model.completed.find(match) || null;
}
