'use strict';
// layer-idp's public API, as an app's backend calls it. Every identity token in the suite
// comes through here: a real account, a real password check, a real signature.

const crypto = require('node:crypto');

async function request(method, url, body, headers = {}) {
  const init = { method, headers: Object.assign({ accept: 'application/json' }, headers) };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['content-type'] = 'application/json';
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch (err) {
    throw new Error(`${method} ${url} failed to connect: ${err.message}`);
  }
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
  return { status: res.status, headers: res.headers, text, json };
}

function expectStatus(res, status, what) {
  if (res.status !== status) {
    throw new Error(`${what}: expected HTTP ${status}, got ${res.status}: ${res.text.slice(0, 500)}`);
  }
  return res.json;
}

let accounts = 0;

/** Signs a new user up (POST /users) and returns the account with its password. */
async function signUp(base, { name = 'user', displayName } = {}) {
  accounts += 1;
  const tag = `${name}-${process.pid}-${accounts}-${crypto.randomBytes(3).toString('hex')}`;
  const password = `pw-${crypto.randomBytes(9).toString('base64url')}`;
  const body = {
    email: `${tag}@example.test`,
    password,
    display_name: displayName || `${name[0].toUpperCase()}${name.slice(1)} E2E`,
    first_name: name,
    last_name: 'E2E',
  };
  const user = expectStatus(await request('POST', `${base}/users`, body), 201, `POST /users (${name})`);
  if (!user || typeof user.id !== 'string' || !user.id) {
    throw new Error(`POST /users answered without a user id: ${JSON.stringify(user)}`);
  }
  return { id: user.id, email: body.email, password, display_name: body.display_name, user };
}

/** POST /authenticate {email, password, nonce[, app_id]} → the identity token. */
async function authenticate(base, { email, password, nonce, appId }) {
  const payload = { email, password, nonce };
  if (appId) payload.app_id = appId;
  const body = expectStatus(await request('POST', `${base}/authenticate`, payload), 200, 'POST /authenticate');
  if (!body || typeof body.identity_token !== 'string') {
    throw new Error(`POST /authenticate answered without identity_token: ${JSON.stringify(body)}`);
  }
  return body.identity_token;
}

/** POST /sessions {email, password} → {session_token, …} (the app's session at layer-idp). */
async function openSession(base, { email, password }) {
  const body = expectStatus(await request('POST', `${base}/sessions`, { email, password }), 201, 'POST /sessions (layer-idp)');
  if (!body || typeof body.session_token !== 'string') {
    throw new Error(`POST /sessions answered without session_token: ${JSON.stringify(body)}`);
  }
  return body;
}

/** POST /identity_tokens {nonce[, app_id]} with the session → the identity token. */
async function identityToken(base, sessionToken, nonce, appId) {
  const payload = appId ? { nonce, app_id: appId } : { nonce };
  const res = await request('POST', `${base}/identity_tokens`, payload, { authorization: `Bearer ${sessionToken}` });
  const body = expectStatus(res, 200, 'POST /identity_tokens');
  if (!body || typeof body.identity_token !== 'string') {
    throw new Error(`POST /identity_tokens answered without identity_token: ${JSON.stringify(body)}`);
  }
  return body.identity_token;
}

function decodeJwt(token) {
  const [header, claims] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(header, 'base64url').toString('utf8')),
    claims: JSON.parse(Buffer.from(claims, 'base64url').toString('utf8')),
  };
}

module.exports = { request, expectStatus, signUp, authenticate, openSession, identityToken, decodeJwt };
