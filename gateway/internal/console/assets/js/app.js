// The console's shell: who is signed in, the navigation their roles allow,
// and a hash router (#/accounts, #/history/<id>, …) that draws one view at
// a time into <main>. Without a session every route shows the sign-in
// screen, so the back button after a logout shows nothing of the session.
import * as api from './api.js';
import { h, show } from './dom.js';
import * as auth from './views/auth.js';
import * as customer from './views/customer.js';
import * as settings from './views/settings.js';
import * as staff from './views/staff.js';
import * as admin from './views/admin.js';

const view = document.getElementById('view');
const nav = document.getElementById('nav');
const who = document.getElementById('who');

let me = null; // the signed-in user, from GET /v1/users/me

// ROUTES: name → [title, roles allowed (null: any signed-in user), draw].
const ROUTES = {
  accounts: ['Accounts', null, customer.accounts],
  transfer: ['Transfer', null, customer.transfer],
  history: ['History', null, customer.history],
  sessions: ['Security', null, settings.security],
  queue: ['Approvals', ['manager', 'admin'], staff.queue],
  operations: ['Operations', ['manager', 'admin'], staff.operations],
  users: ['Users', ['admin'], admin.users],
};
const NAV = ['accounts', 'transfer', 'sessions', 'queue', 'operations', 'users'];

function allowed(route) {
  const roles = ROUTES[route][1];
  return !roles || (me && me.roles.some((r) => roles.includes(r)));
}

export function go(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function parseHash() {
  const [route, ...args] = location.hash.replace(/^#\/?/, '').split('/');
  return { route: route || 'accounts', args: args.map(decodeURIComponent) };
}

function drawChrome(current) {
  if (!me) {
    nav.replaceChildren();
    who.replaceChildren();
    return;
  }
  show(nav, NAV.filter(allowed).map((r) =>
    h('a', { href: '#/' + r, class: r === current ? 'active' : '', 'aria-current': r === current ? 'page' : null }, ROUTES[r][0])));
  show(who,
    h('span', { class: 'name', id: 'who-name' }, me.displayName || me.email),
    h('span', { class: 'roles' }, me.roles.join(' · ')),
    h('button', { type: 'button', class: 'ghost', id: 'logout', onclick: signOut }, 'Sign out'));
}

async function signOut() {
  try {
    await api.logout();
  } catch {
    // The session is over here whatever the bank answered.
  }
  me = null;
  location.replace('#/login');
  render();
}

// signedIn is called by the sign-in views once a token is held.
async function signedIn() {
  const { body } = await api.call('GET', '/v1/users/me');
  me = body.user;
  go('#/accounts');
}

// render draws the screen the hash names into a fresh slot of <main>. A
// screen still loading when the hash changes again draws into its own
// slot, by then detached, so it can never cover the newer screen.
async function render() {
  const { route, args } = parseHash();
  const slot = h('div', { class: 'slot' });
  view.replaceChildren(slot);
  if (!api.signedIn()) {
    me = null;
    drawChrome('');
    if (route === 'register') return auth.register(slot, { go, signedIn });
    return auth.login(slot, { go, signedIn });
  }
  try {
    if (!me) me = (await api.call('GET', '/v1/users/me')).body.user;
    if (!slot.isConnected) return undefined;
    if (!ROUTES[route] || !allowed(route)) return go('#/accounts');
    drawChrome(route === 'history' ? 'accounts' : route);
    document.title = ROUTES[route][0] + ' · Bastion console';
    return await ROUTES[route][2](slot, { me, go, args });
  } catch (e) {
    if (!api.signedIn()) return render();
    return show(slot, h('p', { class: 'notice error', role: 'alert' }, 'Could not load this page: ' + e.message));
  }
}

api.onSignedOut(() => {
  me = null;
  render();
});
window.addEventListener('hashchange', () => { render(); });

async function boot() {
  try {
    await api.resume();
  } catch {
    // The bank is unreachable: the sign-in screen says so when used.
  }
  render();
}
boot();
