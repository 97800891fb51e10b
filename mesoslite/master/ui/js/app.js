// The dashboard: a hash router over a few pages, all fed by one Store that
// follows the master's event stream.

import { h, fill, link } from './dom.js';
import { Store } from './store.js';
import { plugin, frameworkApi } from './plugins.js';
import * as overview from './pages/overview.js';
import * as agentPage from './pages/agent.js';
import * as frameworkPage from './pages/framework.js';
import * as taskPage from './pages/task.js';
import { empty, pageHead } from './components.js';

const PAGES = {
  '': overview,
  agents: agentPage,
  frameworks: frameworkPage,
  tasks: taskPage,
};

const store = new Store();
const main = document.getElementById('main');
let current = null; // {key, page}

function parseRoute() {
  const path = location.hash.replace(/^#\/?/, '');
  const segments = path ? path.split('/').map((s) => decodeURIComponent(s)) : [];
  return { name: segments[0] || '', params: segments.slice(1), key: path };
}

function pluginPage(params) {
  const [id, frameworkId, ...rest] = params;
  const p = plugin(id);
  if (!p) return null;
  return {
    mount(root) {
      const inner = h('div');
      let mounted = null;
      fill(root, inner);
      return {
        update(model) {
          const fw = model.frameworks.get(frameworkId);
          if (!fw) {
            fill(inner, pageHead('Framework not found'), empty(frameworkId));
            return;
          }
          if (!mounted) {
            mounted = p.mount(inner, { framework: fw, params: rest, store, h,
              api: (path, query) => frameworkApi(frameworkId, path, query) });
          }
          mounted.update(model);
        },
        unmount() {
          if (mounted) mounted.unmount();
        },
      };
    },
  };
}

function show() {
  const r = parseRoute();
  if (current && current.key === r.key) return;
  if (current) current.page.unmount();
  const module = r.name === 'x' ? pluginPage(r.params) : PAGES[r.name];
  main.replaceChildren();
  if (!module) {
    fill(main, pageHead('Not found', { crumbs: [link('Cluster', '')] }),
      empty(`There is no page ${location.hash}.`));
    current = { key: r.key, page: { update() {}, unmount() {} } };
  } else {
    current = { key: r.key, page: module.mount(main, { store }, r.params) };
  }
  renderNav(r.name);
  window.scrollTo(0, 0);
  if (store.model) current.page.update(store.model);
}

function renderNav(name) {
  const nav = document.getElementById('nav');
  fill(nav, h('a', { href: '#/', class: name === '' ? 'active' : null }, 'Overview'),
    h('a', { href: '/metrics', target: '_blank', rel: 'noopener' }, 'Metrics'),
    h('a', { href: '/master/state', target: '_blank', rel: 'noopener' }, 'State JSON'));
}

function renderError() {
  let banner = document.getElementById('error');
  if (!store.error) {
    if (banner) banner.remove();
    return;
  }
  if (!banner) {
    banner = h('div', { id: 'error', class: 'error-box page' });
    main.before(banner);
  }
  fill(banner, `Cannot read the master's state: ${store.error}. Retrying…`);
}

store.subscribe((model) => {
  renderError();
  if (model && current) current.page.update(model);
});

store.onStatus((status) => {
  const el = document.getElementById('live');
  el.classList.toggle('is-live', status === 'live');
  el.classList.toggle('is-down', status === 'down');
  el.querySelector('.live-text').textContent = status === 'live' ? 'live' : status;
});

window.addEventListener('hashchange', show);
show();
store.start();
