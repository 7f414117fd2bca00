// The console's only way to put anything on the page. Every string becomes
// a text node or an attribute value; nothing is ever parsed as HTML (no
// HTML-parsing sink is used anywhere: the CSP's Trusted Types rule would
// refuse a string there, and no policy exists to allow one).

// Boolean and value-like properties are set as properties, not attributes.
const PROPS = new Set(['value', 'checked', 'disabled', 'required', 'selected', 'hidden', 'readOnly']);

// h builds an element: h('td', {class: 'num'}, 'text', childNode, …).
// Props named on<event> add listeners; null, undefined and false are skipped.
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (PROPS.has(k)) el[k] = v;
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

// append adds children: nodes as they are, arrays flattened, anything else as text.
export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// show replaces el's children.
export function show(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// field is a labelled form control.
export function field(label, control, hint) {
  return h('label', { class: 'field' }, h('span', { class: 'label' }, label), control, hint ? h('span', { class: 'hint' }, hint) : null);
}

// when formats an RFC 3339 timestamp for people, in UTC.
export function when(ts) {
  if (!ts) return '';
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return String(ts);
  return d.toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
}

// shortId shows the start of a UUID, with the whole id as a tooltip.
export function shortId(id) {
  return h('code', { class: 'id', title: id || '' }, id ? id.slice(0, 8) : '—');
}

// notice is a status line: kind is 'ok', 'warn' or 'error'.
export function notice(kind, ...text) {
  return h('p', { class: 'notice ' + kind, role: kind === 'error' ? 'alert' : 'status' }, ...text);
}
