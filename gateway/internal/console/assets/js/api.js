// The console's one door to the bank. The access token lives in this
// module's memory only: never in a storage API or in a cookie script
// could read. The refresh token never reaches the page at all: the
// gateway's session routes keep it in an HttpOnly cookie scoped to
// /console/session/ and answer only this origin (the X-Bastion-Console
// header and the Origin check are their CSRF defence).

const SESSION = '/console/session/';

let access = null; // the bearer token, or null when signed out
let renewTimer = 0;
const signedOutListeners = [];

// Problem is a refusal of the API: its RFC 9457 problem document, as data.
export class Problem extends Error {
  constructor(status, doc) {
    super((doc && doc.detail) || 'request failed (' + status + ')');
    this.status = status;
    this.type = (doc && doc.type) || '';
    this.code = (doc && doc.code) || '';
    this.requestId = (doc && doc.requestId) || '';
    this.violations = (doc && doc.violations) || [];
  }

  // is reports whether the problem type names reason (e.g. 'separation-of-duties').
  is(reason) {
    return this.type.endsWith(':' + reason);
  }
}

// onSignedOut registers f to run when the session ends (logout, or a
// refresh the bank refused).
export function onSignedOut(f) {
  signedOutListeners.push(f);
}

export function signedIn() {
  return access !== null;
}

async function read(resp) {
  const text = await resp.text();
  let body = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  if (!resp.ok) throw new Problem(resp.status, body);
  return { body: body || {}, replayed: resp.headers.get('Idempotent-Replayed') === 'true' };
}

async function session(route, body, withToken) {
  const headers = { 'Content-Type': 'application/json', 'X-Bastion-Console': '1' };
  if (withToken && access) headers.Authorization = 'Bearer ' + access;
  const resp = await fetch(SESSION + route, {
    method: 'POST', headers, body: JSON.stringify(body || {}), credentials: 'same-origin', cache: 'no-store',
  });
  return read(resp);
}

// keep holds a new access token and plans its renewal at four fifths of
// its life, through the refresh cookie.
function keep(answer) {
  access = answer.accessToken;
  clearTimeout(renewTimer);
  const life = Math.max(30, Number(answer.expiresIn) || 900);
  renewTimer = setTimeout(() => { resume().catch(() => {}); }, life * 800);
}

function drop() {
  const was = access !== null;
  access = null;
  clearTimeout(renewTimer);
  if (was) for (const f of signedOutListeners) f();
}

// login signs in with a password. It returns {mfaToken} when the user has
// MFA on and a one-time code must follow (loginMFA), else {}.
export async function login(email, password) {
  const { body } = await session('login', { email, password });
  if (body.mfaRequired) return { mfaToken: body.mfaToken };
  keep(body);
  return {};
}

// loginMFA completes a login with the authenticator's current code.
export async function loginMFA(mfaToken, code) {
  const { body } = await session('mfa', { mfaToken, code });
  keep(body);
}

// resume gets a fresh access token from the refresh cookie; it reports
// whether a session was there to resume (no cookie: an answer with no token).
export async function resume() {
  try {
    const { body } = await session('refresh', {});
    if (!body.accessToken) {
      drop();
      return false;
    }
    keep(body);
    return true;
  } catch (e) {
    drop();
    if (e instanceof Problem && e.status === 401) return false;
    throw e;
  }
}

// logout ends the session at the bank (access and refresh token) and here.
export async function logout() {
  try {
    await session('logout', {}, true);
  } finally {
    drop();
  }
}

// call makes one API request. A 401 is answered once by renewing the
// access token and trying again (a 401 is refused before execution, so even
// a transfer may be sent again with its key). opts: body, key (the
// Idempotency-Key) and query (an object of parameters; empty ones left out).
export async function call(method, path, opts = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(opts.query || {})) {
    if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, v);
  }
  const send = () => {
    const headers = {};
    if (access) headers.Authorization = 'Bearer ' + access;
    if (opts.key) headers['Idempotency-Key'] = opts.key;
    const init = { method, headers, credentials: 'omit', cache: 'no-store' };
    if (method !== 'GET') {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(opts.body || {});
    }
    return fetch(url.pathname + url.search, init);
  };
  let resp = await send();
  if (resp.status === 401 && access) {
    if (!(await resume())) throw new Problem(401, { detail: 'your session has ended: sign in again' });
    resp = await send();
  }
  return read(resp);
}
