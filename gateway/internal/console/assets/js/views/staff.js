// Managers' and admins' work: the approval queue (approve, reject; the
// separation-of-duties refusal shown as such), freezing and unfreezing an
// account, and deposits. Every one of these needs a sign-in with a code.
import * as api from '../api.js';
import { field, h, notice, shortId, show, when } from '../dom.js';
import { CURRENCIES, format, parse } from '../money.js';
import { problemNotice } from './problem.js';

export async function queue(view) {
  const pages = [''];
  const holder = h('div');
  const out = h('div', { class: 'out', id: 'queue-result' });
  const decide = async (t, verb, reason) => {
    try {
      const { body } = await api.call('POST', '/v1/transfers/' + encodeURIComponent(t.id) + ':' + verb, { body: verb === 'reject' ? { reason } : {} });
      show(out, notice('ok', (verb === 'approve' ? 'Approved ' : 'Rejected ') + format(t.amount, t.currency) + ': now ' + body.transfer.status + '.'));
      await load(0);
    } catch (e) {
      show(out, problemNotice(e));
    }
  };
  const load = async (i) => {
    const { body } = await api.call('GET', '/v1/transfers', { query: { status: 'PENDING_APPROVAL', pageSize: 10, pageToken: pages[i] } });
    if (body.nextPageToken) pages[i + 1] = body.nextPageToken;
    const list = body.transfers || [];
    show(holder, list.length ? h('table', { id: 'queue' },
      h('thead', null, h('tr', null, h('th', null, 'Requested'), h('th', null, 'Kind'), h('th', null, 'From → to'),
        h('th', null, 'Description'), h('th', { class: 'num' }, 'Amount'), h('th', null, 'Decision'))),
      h('tbody', null, list.map((t) => {
        const reason = h('input', { class: 'reason', placeholder: 'reason to reject', 'aria-label': 'reason to reject', maxlength: '280' });
        return h('tr', { 'data-transfer': t.id },
          h('td', { class: 'when' }, when(t.createdAt), h('div', { class: 'sub' }, 'by ', shortId(t.initiatedBy))),
          h('td', null, t.kind === 'DEPOSIT' ? 'Deposit' : 'Transfer', h('div', { class: 'sub' }, 'held: ' + (t.holdReason || ''))),
          h('td', null, shortId(t.fromAccountId), ' → ', shortId(t.toAccountId)),
          h('td', { class: 'description' }, t.description || t.reference || ''),
          h('td', { class: 'num' }, format(t.amount, t.currency)),
          h('td', { class: 'actions' },
            h('button', { type: 'button', class: 'approve', onclick: () => decide(t, 'approve') }, 'Approve'),
            reason,
            h('button', { type: 'button', class: 'ghost danger reject', onclick: () => decide(t, 'reject', reason.value || 'rejected in the console') }, 'Reject')));
      })))
      : h('p', { class: 'muted', id: 'queue-empty' }, 'Nothing waits for approval.'),
    h('div', { class: 'pager' },
      h('button', { type: 'button', class: 'ghost', disabled: i === 0, onclick: () => load(i - 1) }, '← Earlier'),
      h('span', { class: 'muted' }, 'Page ' + (i + 1)),
      h('button', { type: 'button', class: 'ghost', disabled: !body.nextPageToken, onclick: () => load(i + 1) }, 'Later →')));
  };
  show(view, h('section', { class: 'card' }, h('h1', null, 'Approval queue'),
    h('p', { class: 'muted' }, 'Transfers and deposits at or above the approval threshold, oldest first. A second person decides: never the initiator, never an owner of either account.'),
    out, holder));
  await load(0);
}

function accountCard() {
  const id = h('input', { id: 'op-account', required: true, placeholder: 'account id', spellcheck: 'false' });
  const reason = h('input', { id: 'op-reason', maxlength: '280', placeholder: 'reason (audited)' });
  const shown = h('div', { class: 'out', id: 'op-account-view' });
  const out = h('div', { class: 'out', id: 'op-result' });
  const drawAccount = (a) => show(shown, h('dl', { class: 'figures' },
    h('div', null, h('dt', null, 'Account'), h('dd', null, a.displayName || '(unnamed)', ' ', h('span', { class: 'badge ' + a.status.toLowerCase() }, a.status))),
    h('div', null, h('dt', null, 'Owner'), h('dd', null, shortId(a.ownerId))),
    h('div', null, h('dt', null, 'Balance'), h('dd', null, format(a.balance && a.balance.amount, a.currency))),
    h('div', null, h('dt', null, 'Available'), h('dd', null, format(a.availableBalance && a.availableBalance.amount, a.currency)))));
  const act = async (verb) => {
    try {
      const { body } = await api.call('POST', '/v1/accounts/' + encodeURIComponent(id.value.trim()) + ':' + verb, { body: { reason: reason.value } });
      drawAccount(body.account);
      show(out, notice('ok', 'Account ' + (verb === 'freeze' ? 'frozen' : 'unfrozen') + '.'));
    } catch (e) {
      show(out, problemNotice(e));
    }
  };
  const form = h('form', {
    class: 'inline',
    onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        const { body } = await api.call('GET', '/v1/accounts/' + encodeURIComponent(id.value.trim()));
        drawAccount(body.account);
        out.replaceChildren();
      } catch (e) {
        shown.replaceChildren();
        show(out, problemNotice(e));
      }
    },
  }, field('Account id', id), h('button', { type: 'submit', id: 'op-lookup' }, 'Look up'));
  return h('section', { class: 'card' }, h('h2', null, 'Freeze or unfreeze an account'), form, shown,
    h('div', { class: 'inline' }, field('Reason', reason),
      h('button', { type: 'button', class: 'danger', id: 'op-freeze', onclick: () => act('freeze') }, 'Freeze'),
      h('button', { type: 'button', class: 'ghost', id: 'op-unfreeze', onclick: () => act('unfreeze') }, 'Unfreeze')), out);
}

function depositCard() {
  const id = h('input', { id: 'dep-account', required: true, placeholder: 'account id', spellcheck: 'false' });
  const currency = h('select', { id: 'dep-currency' }, CURRENCIES.map((c) => h('option', { value: c }, c)));
  const amount = h('input', { id: 'dep-amount', inputmode: 'decimal', required: true, placeholder: '100.00' });
  const reference = h('input', { id: 'dep-reference', required: true, maxlength: '140' });
  const out = h('div', { class: 'out', id: 'dep-result' });
  const form = h('form', {
    class: 'wide',
    onsubmit: async (ev) => {
      ev.preventDefault();
      const minor = parse(amount.value, currency.value);
      if (minor === null) {
        show(out, notice('error', 'Enter an amount in ' + currency.value + ', e.g. 100.00.'));
        return;
      }
      const key = crypto.randomUUID();
      try {
        const { body, replayed } = await api.call('POST', '/v1/accounts/' + encodeURIComponent(id.value.trim()) + '/deposits',
          { key, body: { amount: minor, currency: currency.value, reference: reference.value } });
        const t = body.transfer;
        show(out, replayed ? notice('warn', 'Replayed: this is the first answer to the same Idempotency-Key.') : null,
          t.status === 'PENDING_APPROVAL'
            ? notice('warn', 'Deposit of ' + format(t.amount, t.currency) + ' held for a second manager’s approval.')
            : notice('ok', 'Deposited ' + format(t.amount, t.currency) + '.'),
          h('p', { class: 'meta' }, 'Transfer ', h('code', null, t.id), ' · Idempotency-Key ', h('code', null, key)));
      } catch (e) {
        show(out, problemNotice(e));
      }
    },
  }, h('div', { class: 'inline' }, field('Account id', id), field('Currency', currency), field('Amount', amount)),
  field('Reference', reference), h('button', { type: 'submit', id: 'dep-submit' }, 'Deposit'), out);
  return h('section', { class: 'card' }, h('h2', null, 'Deposit'),
    h('p', { class: 'muted' }, 'Money from the bank’s settlement account. Never into an account of your own; at or above the approval threshold it waits for a second manager.'), form);
}

export async function operations(view) {
  show(view, h('h1', null, 'Operations'), accountCard(), depositCard());
}
