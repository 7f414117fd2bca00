// Sign-in (password, then the one-time code when MFA is on) and
// registration. The tokens never pass through here: the session routes set
// the refresh cookie and api.js keeps the access token.
import * as api from '../api.js';
import { field, h, notice, show } from '../dom.js';
import { problemNotice } from './problem.js';

function card(title, ...body) {
  return h('section', { class: 'card narrow' }, h('h1', null, title), ...body);
}

export function login(view, ctx) {
  const email = h('input', { type: 'email', id: 'login-email', autocomplete: 'username', required: true });
  const password = h('input', { type: 'password', id: 'login-password', autocomplete: 'current-password', required: true });
  const out = h('div', { class: 'out' });
  const button = h('button', { type: 'submit', id: 'login-submit' }, 'Sign in');
  const form = h('form', {
    onsubmit: async (ev) => {
      ev.preventDefault();
      button.disabled = true;
      try {
        const r = await api.login(email.value, password.value);
        if (r.mfaToken) return mfa(view, ctx, r.mfaToken);
        await ctx.signedIn();
      } catch (e) {
        show(out, problemNotice(e));
      } finally {
        button.disabled = false;
      }
    },
  }, field('Email', email), field('Password', password), button, out);
  document.title = 'Sign in · Bastion console';
  show(view, card('Sign in to Bastion', form,
    h('p', { class: 'muted' }, 'New here? ', h('a', { href: '#/register' }, 'Open a customer profile'), '.')));
  email.focus();
}

function mfa(view, ctx, mfaToken) {
  const code = h('input', { id: 'mfa-code', inputmode: 'numeric', autocomplete: 'one-time-code', pattern: '[0-9]{6}', maxlength: '6', required: true });
  const out = h('div', { class: 'out' });
  const button = h('button', { type: 'submit', id: 'mfa-submit' }, 'Verify');
  const form = h('form', {
    onsubmit: async (ev) => {
      ev.preventDefault();
      button.disabled = true;
      try {
        await api.loginMFA(mfaToken, code.value.trim());
        await ctx.signedIn();
      } catch (e) {
        show(out, problemNotice(e));
        if (e.status === 401) {
          out.append(h('p', null, h('a', { href: '#/login', onclick: () => login(view, ctx) }, 'Start again')));
        }
      } finally {
        button.disabled = false;
      }
    },
  }, field('One-time code', code, 'The six digits your authenticator app shows now.'), button, out);
  show(view, card('Two-step sign-in', form));
  code.focus();
}

export function register(view, ctx) {
  const email = h('input', { type: 'email', id: 'reg-email', autocomplete: 'email', required: true });
  const name = h('input', { id: 'reg-name', autocomplete: 'name', maxlength: '64', required: true });
  const password = h('input', { type: 'password', id: 'reg-password', autocomplete: 'new-password', minlength: '12', maxlength: '128', required: true });
  const out = h('div', { class: 'out' });
  const button = h('button', { type: 'submit', id: 'reg-submit' }, 'Create profile');
  const form = h('form', {
    onsubmit: async (ev) => {
      ev.preventDefault();
      button.disabled = true;
      try {
        await api.call('POST', '/v1/auth/register', { body: { email: email.value, password: password.value, displayName: name.value } });
        show(out, notice('ok', 'Profile created; signing in…'));
        await api.login(email.value, password.value);
        await ctx.signedIn();
      } catch (e) {
        show(out, problemNotice(e));
      } finally {
        button.disabled = false;
      }
    },
  }, field('Email', email), field('Display name', name),
  field('Password', password, '12 to 128 characters; a common password is refused.'), button, out);
  document.title = 'Register · Bastion console';
  show(view, card('Open a customer profile', form,
    h('p', { class: 'muted' }, 'Already a customer? ', h('a', { href: '#/login' }, 'Sign in'), '.')));
  email.focus();
}
