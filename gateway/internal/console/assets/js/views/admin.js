// Admins' work: the users, their roles, and disabling or enabling one.
import * as api from '../api.js';
import { field, h, notice, show, when } from '../dom.js';
import { problemNotice } from './problem.js';

const ROLES = ['user', 'manager', 'admin'];

export async function users(view, ctx) {
  const pages = [''];
  const email = h('input', { type: 'search', id: 'users-email', placeholder: 'email (exact)', 'aria-label': 'email' });
  const holder = h('div');
  const out = h('div', { class: 'out', id: 'users-result' });

  const row = (u) => {
    const boxes = ROLES.map((r) => h('label', { class: 'check' },
      h('input', { type: 'checkbox', value: r, checked: u.roles.includes(r) }), r));
    const reason = h('input', { class: 'reason', placeholder: 'reason (audited)', 'aria-label': 'reason', maxlength: '280' });
    const self = u.id === ctx.me.id;
    const act = async (what, req) => {
      try {
        const { body } = await req();
        show(out, notice('ok', what + ': ' + body.user.email + '.'));
        await load(0);
      } catch (e) {
        show(out, problemNotice(e));
      }
    };
    return h('tr', { 'data-user': u.id },
      h('td', null, h('span', { class: 'display-name' }, u.displayName || ''), h('div', { class: 'sub' }, u.email)),
      h('td', null, h('span', { class: 'roles-edit' }, boxes),
        h('button', {
          type: 'button', class: 'ghost',
          onclick: () => act('Roles saved', () => api.call('PUT', '/v1/users/' + encodeURIComponent(u.id) + '/roles',
            { body: { roles: boxes.map((b) => b.firstChild).filter((c) => c.checked).map((c) => c.value) } })),
        }, 'Save roles')),
      h('td', null, h('span', { class: 'badge ' + u.status.toLowerCase() }, u.status), u.mfaEnabled ? h('span', { class: 'badge active' }, 'MFA') : null,
        h('div', { class: 'sub' }, 'since ' + when(u.createdAt))),
      h('td', { class: 'actions' }, self ? h('span', { class: 'muted' }, 'you') : [reason,
        u.status === 'DISABLED'
          ? h('button', { type: 'button', class: 'ghost', onclick: () => act('Enabled', () => api.call('POST', '/v1/users/' + encodeURIComponent(u.id) + ':enable', { body: { reason: reason.value } })) }, 'Enable')
          : h('button', { type: 'button', class: 'ghost danger', onclick: () => act('Disabled', () => api.call('POST', '/v1/users/' + encodeURIComponent(u.id) + ':disable', { body: { reason: reason.value } })) }, 'Disable')]));
  };

  const load = async (i) => {
    const { body } = await api.call('GET', '/v1/users', { query: { pageSize: 20, pageToken: pages[i], email: email.value.trim() } });
    if (body.nextPageToken) pages[i + 1] = body.nextPageToken;
    const list = body.users || [];
    show(holder, list.length ? h('table', { id: 'users' },
      h('thead', null, h('tr', null, h('th', null, 'User'), h('th', null, 'Roles'), h('th', null, 'Status'), h('th', null, ''))),
      h('tbody', null, list.map(row)))
      : h('p', { class: 'muted' }, 'No user matches.'),
    h('div', { class: 'pager' },
      h('button', { type: 'button', class: 'ghost', disabled: i === 0, onclick: () => load(i - 1) }, '← Previous'),
      h('span', { class: 'muted' }, 'Page ' + (i + 1)),
      h('button', { type: 'button', class: 'ghost', disabled: !body.nextPageToken, onclick: () => load(i + 1) }, 'Next →')));
  };
  const search = h('form', {
    class: 'inline',
    onsubmit: async (ev) => {
      ev.preventDefault();
      pages.length = 1;
      try {
        await load(0);
      } catch (e) {
        show(out, problemNotice(e));
      }
    },
  }, field('Find by email', email), h('button', { type: 'submit', id: 'users-search' }, 'Search'));
  show(view, h('section', { class: 'card' }, h('h1', null, 'Users'), search, out, holder));
  await load(0);
}
