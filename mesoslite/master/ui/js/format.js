// Formatting of numbers, sizes, times and states.

export function num(value, digits = 1) {
  const v = Number(value) || 0;
  return Number.isInteger(v) ? String(v) : v.toFixed(digits).replace(/\.0+$/, '');
}

/** Megabytes (Mesos' unit for mem and disk) as a readable size. */
export function mb(value) {
  const v = Number(value) || 0;
  if (v >= 1024 * 1024) return `${num(v / 1024 / 1024)} TB`;
  if (v >= 1024) return `${num(v / 1024)} GB`;
  return `${num(v, 0)} MB`;
}

export function bytes(value) {
  const v = Number(value) || 0;
  if (v >= 1 << 30) return `${num(v / (1 << 30))} GB`;
  if (v >= 1 << 20) return `${num(v / (1 << 20))} MB`;
  if (v >= 1 << 10) return `${num(v / (1 << 10))} KB`;
  return `${v} B`;
}

export function pct(fraction) {
  const v = Math.max(0, Number(fraction) || 0) * 100;
  return v > 0 && v < 1 ? '<1%' : `${Math.round(v)}%`;
}

/** Seconds since the epoch -> "2026-01-31 14:05:09" (local time). */
export function time(seconds) {
  if (!seconds) return '—';
  const d = new Date(seconds * 1000);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function ago(seconds, now = Date.now() / 1000) {
  if (!seconds) return '—';
  const d = Math.max(0, now - seconds);
  if (d < 5) return 'just now';
  if (d < 60) return `${Math.floor(d)}s ago`;
  if (d < 3600) return `${Math.floor(d / 60)}m ago`;
  if (d < 86400) return `${Math.floor(d / 3600)}h ago`;
  return `${Math.floor(d / 86400)}d ago`;
}

export function duration(seconds) {
  const s = Math.max(0, Math.round(Number(seconds) || 0));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

/** 'TASK_RUNNING' -> 'running'. */
export function shortState(state) {
  return String(state || 'unknown').replace(/^TASK_/, '').toLowerCase();
}

export function stateClass(state) {
  return 'st-' + shortState(state).replace(/[^a-z_]/g, '');
}

export const TASK_STATES = [
  'TASK_STAGING', 'TASK_STARTING', 'TASK_RUNNING', 'TASK_KILLING', 'TASK_FINISHED',
  'TASK_FAILED', 'TASK_KILLED', 'TASK_ERROR', 'TASK_LOST', 'TASK_DROPPED',
  'TASK_UNREACHABLE', 'TASK_GONE', 'TASK_GONE_BY_OPERATOR', 'TASK_UNKNOWN',
];

export const TERMINAL = new Set([
  'TASK_FINISHED', 'TASK_FAILED', 'TASK_KILLED', 'TASK_ERROR', 'TASK_LOST', 'TASK_DROPPED',
  'TASK_GONE', 'TASK_GONE_BY_OPERATOR',
]);

/** Mesos-style ids are "<master uuid>-S0003": show the distinctive tail. */
export function shortId(id) {
  const text = String(id ?? '');
  const m = text.match(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-(.+)$/);
  return m ? `…-${m[1]}` : text;
}
