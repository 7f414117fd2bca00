// The signed-in user's security: sessions (list, revoke), password change
// and two-step sign-in (TOTP) enrolment.
import * as api from '../api.js';
import { field, h, notice, shortId, show, when } from '../dom.js';
import { problemNotice } from './problem.js';

async function sessionsCard(card) {
  const { body } = await api.call('GET', '/v1/users/me/sessions');
  const out = h('div', { class: 'out' });
  const rows = (body.sessions || []).map((s) => h('tr', null,
    h('td', null, shortId(s.id)),
    h('td', null, when(s.createdAt)),
    h('td', null, when(s.lastUsedAt)),
    h('td', null, s.current ? h('span', { class: 'badge active' }, 'this browser') : ''),
    h('td', null, s.current ? '' : h('button', {
      type: 'button', class: 'ghost danger',
      onclick: async () => {
        try {
          await api.call('POST', '/v1/users/me/sessions/' + encodeURIComponent(s.id) + ':revoke', { body: {} });
          await sessionsCard(card);
        } catch (e) {
          show(out, problemNotice(e));
        }
      },
    }, 'Revoke'))));
  show(card, h('h2', null, 'Sessions'),
    h('p', { class: 'muted' }, 'Every sign-in is a session. Revoking one ends it everywhere within a second.'),
    h('table', { id: 'sessions' }, h('thead', null, h('tr', null, h('th', null, 'Session'), h('th', null, 'Started'),
      h('th', null, 'Last used'), h('th', null, ''), h('th', null, ''))), h('tbody', null, rows)), out);
}

function passwordCard() {
  const current = h('input', { type: 'password', id: 'pw-current', autocomplete: 'current-password', required: true });
  const next = h('input', { type: 'password', id: 'pw-new', autocomplete: 'new-password', minlength: '12', maxlength: '128', required: true });
  const again = h('input', { type: 'password', id: 'pw-again', autocomplete: 'new-password', required: true });
  const out = h('div', { class: 'out', id: 'pw-result' });
  const form = h('form', {
    onsubmit: async (ev) => {
      ev.preventDefault();
      if (next.value !== again.value) {
        show(out, notice('error', 'The two new passwords differ.'));
        return;
      }
      try {
        await api.call('POST', '/v1/users/me/password', { body: { currentPassword: current.value, newPassword: next.value } });
        form.reset();
        show(out, notice('ok', 'Password changed; every other session was signed out.'));
      } catch (e) {
        show(out, problemNotice(e));
      }
    },
  }, field('Current password', current), field('New password', next, '12 to 128 characters.'), field('New password again', again),
  h('button', { type: 'submit', id: 'pw-submit' }, 'Change password'), out);
  return h('section', { class: 'card' }, h('h2', null, 'Password'), form);
}

function mfaCard(me) {
  const card = h('section', { class: 'card' }, h('h2', null, 'Two-step sign-in'));
  if (me.mfaEnabled) {
    card.append(notice('ok', 'On: every sign-in asks for a one-time code from your authenticator app.'));
    return card;
  }
  const out = h('div', { class: 'out' });
  const start = h('button', {
    type: 'button',
    onclick: async () => {
      try {
        const { body } = await api.call('POST', '/v1/users/me/mfa/totp', { body: {} });
        const code = h('input', { id: 'totp-code', inputmode: 'numeric', pattern: '[0-9]{6}', maxlength: '6', required: true });
        show(out,
          h('p', null, 'Add this secret to an authenticator app (TOTP, 6 digits, 30 seconds), then type the code it shows.'),
          h('p', null, h('code', { class: 'secret', id: 'totp-secret' }, body.secret)),
          h('p', { class: 'sub' }, body.otpauthUri),
          h('form', {
            class: 'inline',
            onsubmit: async (ev) => {
              ev.preventDefault();
              try {
                const r = await api.call('POST', '/v1/users/me/mfa/totp:verify', { body: { code: code.value.trim() } });
                me.mfaEnabled = r.body.user.mfaEnabled;
                show(card, h('h2', null, 'Two-step sign-in'), notice('ok', 'Two-step sign-in is on. Staff operations need a sign-in with a code: sign out and in again.'));
              } catch (e) {
                out.append(problemNotice(e));
              }
            },
          }, field('Code', code), h('button', { type: 'submit' }, 'Turn on')));
      } catch (e) {
        show(out, problemNotice(e));
      }
    },
  }, 'Set up two-step sign-in');
  card.append(h('p', { class: 'muted' }, 'Off. Managers and admins need it for every staff operation.'), start, out);
  return card;
}

export async function security(view, ctx) {
  const sessions = h('section', { class: 'card' });
  show(view, h('h1', null, 'Security'), sessions, passwordCard(), mfaCard(ctx.me));
  await sessionsCard(sessions);
}
