// A customer's own banking: accounts with their balances, opening one,
// transfers (one Idempotency-Key per submission, a replay shown as such)
// and an account's history, a page at a time.
import * as api from '../api.js';
import { field, h, notice, shortId, show, when } from '../dom.js';
import { CURRENCIES, format, parse } from '../money.js';
import { problemNotice } from './problem.js';

async function ownAccounts() {
  const { body } = await api.call('GET', '/v1/accounts', { query: { pageSize: 50 } });
  return body.accounts || [];
}

function statusBadge(status) {
  return h('span', { class: 'badge ' + String(status || '').toLowerCase() }, status || '');
}

export async function accounts(view, ctx) {
  const list = await ownAccounts();
  const rows = list.map((a) => h('tr', { 'data-account': a.id },
    h('td', null, h('a', { href: '#/history/' + encodeURIComponent(a.id), class: 'account-name' }, a.displayName || '(unnamed)'),
      h('div', { class: 'sub' }, h('code', { class: 'id' }, a.id))),
    h('td', null, statusBadge(a.status)),
    h('td', { class: 'num balance' }, format(a.balance && a.balance.amount, a.currency)),
    h('td', { class: 'num available' }, format(a.availableBalance && a.availableBalance.amount, a.currency))));
  const table = list.length
    ? h('table', { id: 'accounts' }, h('thead', null, h('tr', null, h('th', null, 'Account'), h('th', null, 'Status'),
      h('th', { class: 'num' }, 'Balance'), h('th', { class: 'num' }, 'Available'))), h('tbody', null, rows))
    : h('p', { class: 'muted' }, 'No accounts yet: open one below.');

  const currency = h('select', { id: 'open-currency' }, CURRENCIES.map((c) => h('option', { value: c }, c)));
  const name = h('input', { id: 'open-name', maxlength: '64', placeholder: 'e.g. Savings' });
  const out = h('div', { class: 'out' });
  const open = h('form', {
    class: 'inline',
    onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        await api.call('POST', '/v1/accounts', { body: { currency: currency.value, displayName: name.value } });
        await accounts(view, ctx);
      } catch (e) {
        show(out, problemNotice(e));
      }
    },
  }, field('Currency', currency), field('Name', name), h('button', { type: 'submit', id: 'open-submit' }, 'Open account'));

  show(view,
    h('section', { class: 'card' }, h('h1', null, 'Your accounts'),
      h('p', { class: 'muted' }, 'Available balance is the balance less transfers held for approval.'), table),
    h('section', { class: 'card' }, h('h2', null, 'Open an account'), open, out));
}

export async function history(view, ctx) {
  const id = ctx.args[0];
  const { body } = await api.call('GET', '/v1/accounts/' + encodeURIComponent(id));
  const a = body.account;
  const pages = ['']; // the page tokens seen, so Newer can go back
  const holder = h('div');
  const load = async (i) => {
    const { body: p } = await api.call('GET', '/v1/accounts/' + encodeURIComponent(id) + '/transactions', { query: { pageSize: 10, pageToken: pages[i] } });
    if (p.nextPageToken) pages[i + 1] = p.nextPageToken;
    const entries = p.entries || [];
    show(holder,
      entries.length ? h('table', { id: 'history' },
        h('thead', null, h('tr', null, h('th', null, 'Date'), h('th', null, 'Description'), h('th', null, 'Counterparty'),
          h('th', { class: 'num' }, 'Amount'), h('th', { class: 'num' }, 'Balance after'))),
        h('tbody', null, entries.map((e) => h('tr', null,
          h('td', { class: 'when' }, when(e.createdAt)),
          h('td', { class: 'description' }, e.description || ''),
          h('td', null, shortId(e.counterpartyAccountId)),
          h('td', { class: 'num ' + (String(e.amount).startsWith('-') ? 'debit' : 'credit') }, format(e.amount, a.currency)),
          h('td', { class: 'num' }, format(e.balanceAfter, a.currency))))))
        : h('p', { class: 'muted' }, 'No transactions on this page.'),
      h('div', { class: 'pager' },
        h('button', { type: 'button', class: 'ghost', id: 'newer', disabled: i === 0, onclick: () => load(i - 1) }, '← Newer'),
        h('span', { class: 'muted' }, 'Page ' + (i + 1)),
        h('button', { type: 'button', class: 'ghost', id: 'older', disabled: !p.nextPageToken, onclick: () => load(i + 1) }, 'Older →')));
  };
  show(view, h('section', { class: 'card' },
    h('p', null, h('a', { href: '#/accounts' }, '← Accounts')),
    h('h1', null, a.displayName || '(unnamed)', ' ', statusBadge(a.status)),
    h('p', { class: 'sub' }, h('code', { class: 'id' }, a.id)),
    h('dl', { class: 'figures' },
      h('div', null, h('dt', null, 'Balance'), h('dd', { id: 'balance' }, format(a.balance && a.balance.amount, a.currency))),
      h('div', null, h('dt', null, 'Available'), h('dd', { id: 'available' }, format(a.availableBalance && a.availableBalance.amount, a.currency)))),
    holder));
  await load(0);
}

function transferResult(t, replayed, key) {
  const amount = format(t.amount, t.currency);
  const lines = [];
  if (replayed) {
    lines.push(notice('warn', 'Replayed: the bank had already answered this Idempotency-Key; this is its first answer again, and no money moved this time.'));
  }
  if (t.status === 'COMPLETED') lines.push(notice('ok', 'Sent ' + amount + '.'));
  else if (t.status === 'PENDING_APPROVAL') {
    lines.push(notice('warn', 'Held for approval (' + (t.holdReason === 'daily_total' ? 'your total today' : 'the amount') +
      '): ' + amount + ' is reserved and leaves when a manager approves it.'));
  } else lines.push(notice('warn', 'Status: ' + t.status));
  lines.push(h('p', { class: 'meta' }, 'Transfer ', h('code', { id: 'transfer-id' }, t.id), ' · Idempotency-Key ', h('code', { id: 'transfer-key' }, key)));
  return lines;
}

export async function transfer(view) {
  const list = (await ownAccounts()).filter((a) => a.status === 'ACTIVE');
  if (!list.length) {
    show(view, h('section', { class: 'card' }, h('h1', null, 'Transfer'), h('p', { class: 'muted' }, 'Open an account first.')));
    return;
  }
  const from = h('select', { id: 'tx-from' }, list.map((a) => h('option', { value: a.id },
    (a.displayName || a.id.slice(0, 8)) + ' · ' + format(a.availableBalance && a.availableBalance.amount, a.currency) + ' available')));
  const to = h('input', { id: 'tx-to', list: 'tx-own', required: true, placeholder: 'account id', autocomplete: 'off', spellcheck: 'false' });
  const own = h('datalist', { id: 'tx-own' }, list.map((a) => h('option', { value: a.id }, a.displayName || '')));
  const amount = h('input', { id: 'tx-amount', inputmode: 'decimal', required: true, placeholder: '25.00' });
  const description = h('input', { id: 'tx-description', maxlength: '140' });
  const out = h('div', { class: 'out', id: 'tx-result' });
  const button = h('button', { type: 'submit', id: 'tx-submit' }, 'Send');
  let last = null; // the last submission: its body and its key

  const send = async (sub) => {
    button.disabled = true;
    try {
      const { body, replayed } = await api.call('POST', '/v1/transfers', { body: sub.body, key: sub.key });
      show(out, transferResult(body.transfer, replayed, sub.key),
        h('button', { type: 'button', class: 'ghost', id: 'tx-again', onclick: () => send(sub) }, 'Send the same request again (same key)'));
    } catch (e) {
      show(out, problemNotice(e));
    } finally {
      button.disabled = false;
    }
  };
  const form = h('form', {
    onsubmit: (ev) => {
      ev.preventDefault();
      const acct = list.find((a) => a.id === from.value);
      const minor = parse(amount.value, acct.currency);
      if (minor === null) {
        show(out, notice('error', 'Enter an amount in ' + acct.currency + ', e.g. 25.00.'));
        return;
      }
      // A new submission gets a new key: a retry of the same one reuses it.
      last = {
        key: crypto.randomUUID(),
        body: { fromAccountId: acct.id, toAccountId: to.value.trim(), amount: minor, currency: acct.currency, description: description.value },
      };
      send(last);
    },
  }, field('From', from), field('To', h('span', null, to, own), 'Another account id; your own accounts are suggested.'),
  field('Amount', amount), field('Description', description), button);
  show(view, h('section', { class: 'card' }, h('h1', null, 'Transfer'),
    h('p', { class: 'muted' }, 'Each submission carries its own Idempotency-Key, so a retried request can never move money twice.'),
    form, out));
}
