// How a refusal of the bank is told to a person: the problem's own detail,
// with the reasons the console knows said plainly. Everything is text.
import { h } from '../dom.js';

export function problemNotice(e) {
  if (!e || e.status === undefined) {
    return h('p', { class: 'notice error', role: 'alert' }, 'The bank could not be reached: ' + ((e && e.message) || 'network error'));
  }
  let lead = 'Refused: ';
  if (e.is('separation-of-duties')) {
    lead = 'Refused by the separation of duties: nobody may decide, deposit into or freeze what they initiated or own. ';
  } else if (e.is('mfa-required')) {
    lead = 'Staff operations need a sign-in with a one-time code: turn on two-step sign-in under Security, then sign in again. ';
  } else if (e.status === 429) {
    lead = 'Too many requests, try again later. ';
  } else if (e.status === 401) {
    lead = 'Not signed in: ';
  }
  return h('div', { class: 'notice error', role: 'alert', 'data-problem': e.type || String(e.status) },
    h('p', null, lead, e.message),
    e.violations.length ? h('ul', null, e.violations.map((v) => h('li', null, v.field + ': ' + v.message))) : null,
    h('p', { class: 'meta' }, 'HTTP ' + e.status + (e.code ? ' · ' + e.code : '') + (e.requestId ? ' · request ' + e.requestId : '')));
}
