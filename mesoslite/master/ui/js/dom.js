// DOM helpers.  Every piece of data reaches the page as a text node or an
// attribute value set through the DOM API: nothing is ever parsed as HTML.

/** h('a', {href: '#/x', class: 'k', onclick: fn}, 'text', child...) */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'class') el.className = value;
      else if (key === 'text') el.textContent = String(value);
      else if (key === 'style') Object.assign(el.style, value); // CSSOM, not an attribute
      else if (key === 'dataset') Object.assign(el.dataset, value);
      else if (key.startsWith('on') && typeof value === 'function') {
        el.addEventListener(key.slice(2), value);
      } else if (key === 'href' || key === 'src') el.setAttribute(key, safeUrl(value));
      else el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** Same-page links and http(s) URLs pass; anything else (javascript:, data:) is dropped. */
export function safeUrl(url) {
  const text = String(url ?? '');
  if (text.startsWith('#') || (text.startsWith('/') && !text.startsWith('//'))) return text;
  try {
    const parsed = new URL(text);
    return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.href : '#';
  } catch {
    return '#';
  }
}

/** A link to a dashboard route: route('tasks', fid, tid) -> '#/tasks/<fid>/<tid>'. */
export function route(...segments) {
  return '#/' + segments.map((s) => encodeURIComponent(String(s))).join('/');
}

export function link(text, ...segments) {
  return h('a', { href: route(...segments) }, text);
}
