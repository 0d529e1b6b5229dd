'use strict';
// Direct calls to the Layer emulator: the two unauthenticated Client API endpoints a test
// may call itself (POST /nonces, POST /sessions), exactly as the SDK sends them, and the
// emulator's test controls under /_mock/.

const { request, expectStatus } = require('./idp');

const CLIENT_HEADERS = {
  accept: 'application/vnd.layer+json; version=2.0',
};

async function newNonce(server) {
  const res = await request('POST', `${server.layerUrl}/nonces`, undefined, CLIENT_HEADERS);
  const body = expectStatus(res, 201, 'POST /nonces (emulator)');
  if (!body || typeof body.nonce !== 'string' || !body.nonce) {
    throw new Error(`POST /nonces answered without a nonce: ${res.text}`);
  }
  return body.nonce;
}

/** POST /sessions {identity_token, app_id} as the SDK sends it; returns the raw response. */
function createSession(server, identityToken, appId = server.appId) {
  return request('POST', `${server.layerUrl}/sessions`, { identity_token: identityToken, app_id: appId }, CLIENT_HEADERS);
}

async function control(server, method, path) {
  const res = await request(method, `${server.layerUrl}/_mock/${path}`);
  if (res.status < 200 || res.status >= 300) {
    throw new Error(`${method} /_mock/${path}: HTTP ${res.status}: ${res.text.slice(0, 500)}`);
  }
  return res.json;
}

const mock = {
  reset: (server) => control(server, 'POST', 'reset'),
  requests: (server) => control(server, 'GET', 'requests'),
  notifications: (server) => control(server, 'GET', 'notifications'),
  expireSessions: (server, userId) => control(server, 'POST', `users/${encodeURIComponent(userId)}/expire-sessions`),
  disconnect: (server, userId) => control(server, 'POST', `users/${encodeURIComponent(userId)}/disconnect`),
};

module.exports = { newNonce, createSession, mock };
