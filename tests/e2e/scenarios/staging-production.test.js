'use strict';
// A staging and a production app against one layer-idp and one emulator, as every Layer
// customer had them. With no keys configured, layer-idp makes a key and a provider per app
// and the emulator trusts each key for its own app only, so the classic mix-up — a token
// obtained for the staging app presented for the production app — fails as it did on Layer,
// and both sides say what happened. Every token comes from a real login.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { World } = require('../lib/world');
const { SimulatedUser } = require('../lib/user');
const idp = require('../lib/idp');

/** `uuid` with the hex digits at `positions` changed: a UUID a few characters away. */
function changed(uuid, positions) {
  const chars = uuid.split('');
  for (const i of positions) chars[i] = chars[i] === 'a' ? 'b' : 'a';
  return chars.join('');
}

const STAGING_UUID = crypto.randomUUID();
// The production UUID differs from the staging one in three characters, as they often did.
const PRODUCTION_UUID = changed(STAGING_UUID, [4, 20, 30]);
const STAGING = `layer:///apps/staging/${STAGING_UUID}`;
const PRODUCTION = `layer:///apps/production/${PRODUCTION_UUID}`;

/** The JWKS entry a token was signed with. */
async function keyOf(server, token) {
  const { header } = idp.decodeJwt(token);
  const jwks = idp.expectStatus(await idp.request('GET', `${server.idpUrl}/.well-known/jwks.json`), 200, 'GET /.well-known/jwks.json');
  const key = jwks.keys.find((k) => k.kid === header.kid);
  assert.ok(key, `the token's kid ${header.kid} is in the JWKS`);
  return key;
}

describe('staging and production apps', { timeout: 120000 }, () => {
  const world = new World();
  let account;

  before(async () => {
    await world.start({ appIds: [STAGING, PRODUCTION] });
    account = await idp.signUp(world.server.idpUrl, { name: 'ada' });
  });

  after(() => world.cleanup());

  it('a staging client and a production client each reach ready with their own app\'s token', async () => {
    const staging = await SimulatedUser.start({ name: 'ada-staging', server: world.server, account, appId: STAGING });
    const production = await SimulatedUser.start({ name: 'ada-production', server: world.server, account, appId: PRODUCTION, login: 'session' });
    world.users.push(staging, production);
    await Promise.all([staging.signIn(), production.signIn()]);

    const stagingToken = staging.challenges[0].token;
    const productionToken = production.challenges[0].token;
    const stagingKey = await keyOf(world.server, stagingToken);
    const productionKey = await keyOf(world.server, productionToken);
    assert.equal(stagingKey.layer_app_id, STAGING, 'the staging token is signed with the staging app\'s key');
    assert.equal(productionKey.layer_app_id, PRODUCTION, 'the production token is signed with the production app\'s key');
    assert.notEqual(stagingKey.kid, productionKey.kid);
    assert.equal(idp.decodeJwt(stagingToken).claims.iss, stagingKey.layer_provider_id);
    assert.equal(idp.decodeJwt(productionToken).claims.iss, productionKey.layer_provider_id);
    assert.notEqual(stagingKey.layer_provider_id, productionKey.layer_provider_id, 'a provider per app');
    for (const [user, token] of [[staging, stagingToken], [production, productionToken]]) {
      const { claims } = idp.decodeJwt(token);
      assert.equal(claims.prn, account.id);
      assert.equal(claims.nce, user.challenges[0].nonce);
    }
  });

  it('a token obtained for the staging app, handed to the production client, is refused naming both', async () => {
    const confused = await SimulatedUser.start({ name: 'ada-confused', server: world.server, account, appId: PRODUCTION });
    world.users.push(confused);
    // The production client's backend asks layer-idp for the staging app: the mix-up.
    confused.tokenFor = (nonce) => idp.authenticate(world.server.idpUrl, { email: account.email, password: account.password, nonce, appId: STAGING });
    const since = confused.mark();
    await confused.call('connect', { userId: account.id });
    const failed = await confused.waitFor('authenticated-error', null, { since, what: 'authenticated-error for the staging app\'s token' });
    assert.equal(failed.error.httpStatus, 422, JSON.stringify(failed));
    assert.equal(failed.error.id, 'invalid_property');
    assert.equal(failed.error.data && failed.error.data.property, 'identity_token');
    assert.ok(failed.error.message.includes(STAGING), failed.error.message);
    assert.ok(failed.error.message.includes(PRODUCTION), failed.error.message);
    confused.assertNo('ready', null, { since, what: 'ready with the other app\'s token' });

    // Fixed at the backend, the same client gets in.
    confused.tokenFor = (nonce) => confused.realLogin(nonce);
    const retry = confused.mark();
    await confused.call('connect', { userId: account.id });
    await confused.waitForReadyOrFail(retry);
  });

  it('layer-idp answers a production app ID it does not know with the app it resembles', async () => {
    // Three other characters of the production UUID changed: nearer production than staging.
    const unknown = `layer:///apps/production/${changed(PRODUCTION_UUID, [0, 9, 35])}`;
    const res = await idp.request('POST', `${world.server.idpUrl}/authenticate`, {
      email: account.email, password: account.password, nonce: 'never-signed', app_id: unknown,
    });
    assert.equal(res.status, 422, res.text);
    assert.equal(res.json.field, 'app_id', res.text);
    const description = res.json.error_description;
    assert.ok(description.includes(`this is not the production app: it differs from the production app ${PRODUCTION} in 3 characters`), description);
    assert.ok(description.includes(`Configured apps: ${PRODUCTION}, ${STAGING}`) || description.includes(`Configured apps: ${STAGING}, ${PRODUCTION}`), description);
  });

  it('the SDKs logged no unexpected errors and threw none', () => {
    // Expected: the refused staging token is logged by the production client's SDK.
    world.assertNoSdkErrors([/invalid_property/]);
  });
});
