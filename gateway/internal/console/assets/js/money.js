// Amounts travel as integer minor units in decimal strings (docs/api.md);
// the console converts with string arithmetic only, never floating point.

// CURRENCIES is the bank's supported list.
export const CURRENCIES = ['EUR', 'USD', 'GBP', 'CHF', 'JPY', 'SEK', 'NOK', 'DKK', 'PLN', 'CZK', 'CAD', 'AUD'];

// digits is the number of minor-unit digits of a currency (ISO 4217).
export function digits(currency) {
  return currency === 'JPY' ? 0 : 2;
}

// format shows minor units as a decimal amount with its currency: "1,234.50 EUR".
export function format(amount, currency) {
  let s = String(amount ?? '0');
  const neg = s.startsWith('-');
  if (neg || s.startsWith('+')) s = s.slice(1);
  if (!/^\d+$/.test(s)) return String(amount) + ' ' + (currency || '');
  const d = digits(currency);
  s = s.padStart(d + 1, '0');
  const whole = s.slice(0, s.length - d).replace(/^0+(?=\d)/, '').replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const frac = d ? '.' + s.slice(s.length - d) : '';
  return (neg ? '−' : '') + whole + frac + (currency ? ' ' + currency : '');
}

// parse reads a decimal amount typed by a person ("25", "25.5", "25.50")
// into minor units, or returns null if it is not one.
export function parse(text, currency) {
  const d = digits(currency);
  const re = d ? new RegExp('^(\\d{1,15})(?:\\.(\\d{1,' + d + '}))?$') : /^(\d{1,15})$/;
  const m = re.exec(String(text).trim());
  if (!m) return null;
  const minor = (m[1] + (m[2] || '').padEnd(d, '0')).replace(/^0+(?=\d)/, '');
  return minor === '0' ? null : minor;
}
