'use strict';
// The emulator checks identity tokens as Layer does: every token here is real (a real
// login at a real layer-idp), and each is wrong in exactly one way. Layer answers all of
// them with 422 invalid_property (code 105) on identity_token; the message names the rule.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const path = require('node:path');
const { World } = require('../lib/world');
const { SimulatedUser } = require('../lib/user');
const idp = require('../lib/idp');
const { newNonce, createSession } = require('../lib/layer');

// Each refusal must name its own rule, and not another's: a token refused for the wrong
// reason would pass a check that only looks at the status code.
const RULES = {
  signature: /signature/i,
  nonce: /\bnonce\b|\bnce\b/i,
  issuer: /\biss\b|issuer|provider/i,
  kid: /\bkid\b|key id/i,
};

function assertRefused(res, rule, what) {
  const detail = `${what}: HTTP ${res.status} ${res.text.slice(0, 600)}`;
  assert.equal(res.status, 422, detail);
  assert.match(res.headers.get('content-type') || '', /^application\/json/, detail);
  assert.equal(res.json.id, 'invalid_property', detail);
  assert.equal(res.json.code, 105, detail);
  assert.equal(res.json.data && res.json.data.property, 'identity_token', detail);
  assert.equal(res.json.session_token, undefined, detail);
  assertNamesRule(res.json.message, rule, what);
}

// A message may name what it checked against: the signature rule the key (kid) it used,
// the kid rule the provider whose keys it knows.
const MAY_ALSO_NAME = { signature: ['kid'], kid: ['issuer'], nonce: [], issuer: [] };

function assertNamesRule(message, rule, what) {
  assert.match(message, RULES[rule], `${what}: the message names the ${rule} rule`);
  for (const [other, pattern] of Object.entries(RULES)) {
    if (other === rule || MAY_ALSO_NAME[rule].includes(other)) continue;
    assert.doesNotMatch(message, pattern, `${what}: refused for the ${rule} rule, the message should not blame the ${other}`);
  }
}

// Changes one byte of the signature, keeping it valid base64url of the same length.
function alterSignature(token) {
  const [header, claims, signature] = token.split('.');
  const bytes = Buffer.from(signature, 'base64url');
  bytes[Math.floor(bytes.length / 2)] ^= 0x01;
  const altered = bytes.toString('base64url');
  assert.notEqual(altered, signature);
  return `${header}.${claims}.${altered}`;
}

describe('identity tokens the emulator refuses', { timeout: 90000 }, () => {
  const world = new World();
  let account;

  before(async () => {
    await world.start();
    account = await idp.signUp(world.server.idpUrl, { name: 'mallory' });
  });

  after(() => world.cleanup());

  it('8a. a real token with an altered signature fails through the SDK with authenticated-error; a good one then works', async () => {
    const user = await SimulatedUser.start({ name: 'mallory', server: world.server, account });
    world.users.push(user);
    user.tokenFor = async (nonce) => alterSignature(await user.realLogin(nonce));

    const since = user.mark();
    await user.call('connect', { userId: user.userId });
    const failed = await user.waitFor('authenticated-error', null, { since, what: 'authenticated-error for a tampered token' });
    assert.equal(failed.error.id, 'invalid_property', JSON.stringify(failed));
    assert.equal(failed.error.code, 105);
    assert.equal(failed.error.httpStatus, 422);
    assert.equal(failed.error.data && failed.error.data.property, 'identity_token');
    assertNamesRule(failed.error.message, 'signature', 'tampered token through the SDK');
    user.assertNo('ready', null, { since, what: 'ready with a tampered token' });
    user.assertNo('authenticated', null, { since, what: 'authenticated with a tampered token' });

    // The same client, asked to connect again, gets a new nonce; an untouched token works.
    user.tokenFor = (nonce) => user.realLogin(nonce);
    const retry = user.mark();
    await user.call('connect', { userId: user.userId });
    await user.waitFor('challenge', null, { since: retry });
    await user.waitForReadyOrFail(retry);
  });

  it('8b. a real token presented twice is refused the second time (the nonce is single use)', async () => {
    const nonce = await newNonce(world.server);
    const token = await idp.authenticate(world.server.idpUrl, { email: account.email, password: account.password, nonce });

    const first = await createSession(world.server, token);
    assert.equal(first.status, 201, `first use: ${first.text}`);
    assert.equal(typeof first.json.session_token, 'string');
    assert.match(first.json.session_token, /^[A-Za-z0-9_-]+$/, 'session tokens are URL-safe');

    assertRefused(await createSession(world.server, token), 'nonce', 'second use of the same token');
  });

  it('8c. a real token from another provider ID signing with the same key and key ID is refused (wrong issuer)', async () => {
    const ids = world.server.developmentIds();
    const otherProvider = `layer:///providers/${crypto.randomUUID()}`;
    const other = await world.startExtraServer({
      emulator: false,
      env: {
        LAYER_IDP_PROVIDER_ID: otherProvider,
        LAYER_IDP_SIGNING__KEY_ID: ids.key_id,
        LAYER_IDP_SIGNING__PRIVATE_KEY_FILE: path.join(world.server.keysDir, 'development-private.pem'),
      },
    });
    const stranger = await idp.signUp(other.idpUrl, { name: 'stranger' });
    const nonce = await newNonce(world.server);
    const token = await idp.authenticate(other.idpUrl, { email: stranger.email, password: stranger.password, nonce });
    const { header, claims } = idp.decodeJwt(token);
    assert.equal(header.kid, ids.key_id, 'same key ID as the trusted provider');
    assert.equal(claims.iss, otherProvider, 'but another issuer');

    assertRefused(await createSession(world.server, token), 'issuer', 'token from another provider');
  });

  it('8d. a real token signed by a key the emulator does not know is refused (unknown kid)', async () => {
    const other = await world.startExtraServer({ emulator: false });
    const stranger = await idp.signUp(other.idpUrl, { name: 'stranger' });
    const nonce = await newNonce(world.server);
    const token = await idp.authenticate(other.idpUrl, { email: stranger.email, password: stranger.password, nonce });
    const { header } = idp.decodeJwt(token);
    assert.notEqual(header.kid, world.server.developmentIds().key_id, 'a key ID the emulator has never seen');

    assertRefused(await createSession(world.server, token), 'kid', 'token signed with an unknown key');
  });

  it('the SDKs logged no unexpected errors and threw none', () => {
    // Expected: the refused tampered token is logged by the SDK.
    world.assertNoSdkErrors([/invalid_property/]);
  });
});
