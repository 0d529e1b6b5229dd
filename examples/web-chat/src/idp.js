// The three layer-idp calls a web app makes. The password is sent once, to open an app
// session; after that every Layer challenge is answered with the session token alone.

async function call(base, path, { method = 'POST', body, session } = {}) {
  const headers = {};
  if (body) headers['content-type'] = 'application/json';
  if (session) headers.authorization = `Bearer ${session}`;
  let res;
  try {
    res = await fetch(base + path, { method, headers, body: body && JSON.stringify(body) });
  } catch (_) {
    // The browser tells a page nothing more: layer-idp is down, or it refused this origin.
    throw new Error(`Could not reach layer-idp at ${base}: is it running, and is this page's origin `
      + `(${window.location.origin}) allowed? (see [http] cors_allowed_origins)`);
  }
  if (res.status === 204) return null;
  const json = await res.json();
  if (!res.ok) {
    const err = new Error(json.error_description || json.error || `HTTP ${res.status}`);
    err.code = json.error;
    err.status = res.status;
    throw err;
  }
  return json;
}

/** Creates an account: POST /users. */
export function signUp(base, { email, password, displayName, avatarUrl }) {
  const body = { email, password };
  if (displayName) body.display_name = displayName;
  if (avatarUrl) body.avatar_url = avatarUrl;
  return call(base, '/users', { body });
}

/** Logs in once: POST /sessions → {session_token, user, expires_at, …}. */
export function openSession(base, { email, password }) {
  return call(base, '/sessions', { body: { email, password } });
}

/** Answers one Layer challenge: POST /identity_tokens with the session token. */
export async function identityToken(base, session, nonce) {
  const { identity_token: token } = await call(base, '/identity_tokens', { body: { nonce }, session });
  return token;
}

/** Logs out: DELETE /sessions/current. */
export function closeSession(base, session) {
  return call(base, '/sessions/current', { method: 'DELETE', session });
}
