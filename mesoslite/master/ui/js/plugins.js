// Dashboard plugins: extra pages for a framework, fed from that framework's own
// API, which the master proxies (GET /master/frameworks/<id>/api/<path>, JSON
// only).  Plugins live in /ui/plugins/ and are listed in /ui/plugins/index.js.
//
// A plugin module's default export:
//   {
//     id: 'services',                  // route: #/x/services/<framework id>/<rest...>
//     title: 'Services',               // the tab's label on the framework's page
//     matches(framework) -> boolean,   // a framework of /master/state's "frameworks"
//     parseQueue(json, path) -> items, // optional, for "why is this waiting?":
//                                      //   [{what, count, since, status, reasons: [..]}]
//     mount(root, ctx) -> {update(model), unmount()},
//   }
// ctx: {framework, params (the route's rest), api(path, query) -> JSON,
//       store, h (the DOM helper: never use innerHTML with data)}.

import plugins from '../plugins/index.js';

const registry = new Map();

export function registerPlugin(plugin) {
  for (const key of ['id', 'title', 'matches', 'mount']) {
    if (!plugin || !(key in plugin)) throw new Error(`dashboard plugin without '${key}'`);
  }
  registry.set(plugin.id, plugin);
}

export function plugin(id) {
  return registry.get(id) || null;
}

export function pluginsFor(framework) {
  return [...registry.values()].filter((p) => {
    try {
      return Boolean(p.matches(framework));
    } catch {
      return false;
    }
  });
}

/** GET a framework's API through the master. */
export async function frameworkApi(frameworkId, path, query = {}) {
  const qs = new URLSearchParams(query).toString();
  const url = `/master/frameworks/${encodeURIComponent(frameworkId)}/api/` +
    String(path).replace(/^\/+/, '') + (qs ? `?${qs}` : '');
  const response = await fetch(url, { headers: { Accept: 'application/json' } });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

for (const p of plugins) registerPlugin(p);
