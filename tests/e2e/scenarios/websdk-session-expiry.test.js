'use strict';
// layer-websdk 3.4.18: when Layer ends a session, the SDK learns it from a 401 whose body
// carries a fresh nonce, challenges the app again, and a new real login brings it back.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { World, pairWithConversation, assertIssuedByIdp } = require('../lib/world');
const { mock } = require('../lib/layer');
const { request } = require('../lib/idp');

describe('layer-websdk 3.4.18: an expired session is re-challenged', { timeout: 90000 }, () => {
  const world = new World();
  let alice;
  let bob;
  let conversationId;

  before(async () => {
    await world.start();
    ({ alice, bob, conversationId } = await pairWithConversation(world));
  });

  after(() => world.cleanup());

  it('7. expire-sessions → 401 with a nonce → second challenge → fresh login → ready; messaging works afterwards', async () => {
    const { sessionToken: oldToken } = await alice.call('sessionToken');
    assert.ok(oldToken, 'alice holds a session token');
    const since = alice.mark();

    await mock.expireSessions(world.server, alice.userId);
    await alice.waitFor('wire', (w) => w.kind === 'ws-close', { since, what: 'alice\'s socket to be closed when her session ended' });
    await alice.waitFor('deauthenticated', null, { since, timeout: 20000 });
    const challenge = await alice.waitFor('challenge', null, { since, timeout: 20000, what: 'a second challenge' });

    // The nonce came from the body of a 401, as Layer sends it.
    const unauthorized = alice.http(since).filter((h) => h.status === 401);
    assert.ok(unauthorized.length >= 1, 'the SDK got a 401');
    const body = JSON.parse(unauthorized[0].body);
    assert.match(unauthorized[0].contentType || '', /^application\/json/);
    assert.equal(body.id, 'authentication_required');
    assert.equal(body.code, 4);
    assert.equal(body.data.nonce, challenge.nonce, 'the challenge\'s nonce is the one in the 401 body');
    assert.notEqual(challenge.nonce, alice.challenges[0].nonce, 'a new nonce, not the first one');
    assert.equal(alice.http(since).filter((h) => h.method === 'POST' && h.url.endsWith('/nonces')).length, 0,
      'the SDK did not need to ask for a nonce');

    await alice.waitForReadyOrFail(since, 20000);
    assert.equal(alice.challenges.length, 2);
    assertIssuedByIdp(world.server, alice, 1);
    const { sessionToken: newToken } = await alice.call('sessionToken');
    assert.ok(newToken && newToken !== oldToken, 'a new session token');

    // The old token stays dead.
    const stale = await request('GET', `${world.server.layerUrl}/conversations`, undefined, {
      accept: 'application/vnd.layer+json; version=2.0',
      authorization: `Layer session-token="${oldToken}"`,
    });
    assert.equal(stale.status, 401, 'the expired session token is refused');
    assert.equal(stale.json && stale.json.id, 'authentication_required');
    assert.ok(stale.json.data && stale.json.data.nonce, 'with a nonce to start over');

    // Bob was not touched.
    bob.assertNo('challenge', (d) => d.nonce !== bob.challenges[0].nonce, { what: 'challenge at bob' });

    // Messaging works in both directions on the new session.
    const bobSince = bob.mark();
    const fromAlice = await alice.call('sendMessage', { conversationId, parts: [{ mimeType: 'text/plain', body: 'back after a new login' }] });
    const atBob = await bob.waitFor('message-added', (d) => d.message.id === fromAlice.id, { since: bobSince });
    assert.equal(atBob.message.parts[0].body, 'back after a new login');

    const aliceSince = alice.mark();
    const fromBob = await bob.call('sendMessage', { conversationId, parts: [{ mimeType: 'text/plain', body: 'welcome back' }] });
    const atAlice = await alice.waitFor('message-added', (d) => d.message.id === fromBob.id, { since: aliceSince });
    assert.equal(atAlice.message.parts[0].body, 'welcome back');
    await bob.call('markRead', { id: fromAlice.id });
    await alice.waitForMessage(fromAlice.id, (m) => m.readStatus === 'ALL', { what: 'readStatus ALL after the new session' });
  });

  it('the SDKs logged no unexpected errors and threw none', () => {
    // Expected: the 401 that ends the session is logged by the SDK.
    world.assertNoSdkErrors([/authentication_required/]);
  });
});

describe('layer-websdk 3.4.18: a session that reaches its lifetime ends by itself', { timeout: 60000 }, () => {
  const world = new World();
  // Long enough for the sign-in (challenge, login, sync) to finish first on a loaded machine:
  // a session ending mid-sync leaves the SDK a request unanswered (request_timeout).
  const ttlSecs = 8;

  before(() => world.start({ env: { LAYER_IDP_MOCK_LAYER__SESSION_TTL_SECS: String(ttlSecs) } }));
  after(() => world.cleanup());

  it('7b. when the session lifetime ends, the emulator closes the socket and the SDK is challenged again', async () => {
    const alice = await world.addUser('alice');
    await alice.signIn();
    const since = alice.mark();

    // No test control: only the emulator's clock ends this session.
    // Without that close the SDK would not notice until its next REST call.
    await alice.waitFor('wire', (w) => w.kind === 'ws-close', { since, timeout: (ttlSecs + 10) * 1000, what: 'the socket closed at the end of the session' });
    const challenge = await alice.waitFor('challenge', null, { since, timeout: 20000, what: 'a second challenge' });
    const unauthorized = alice.http(since).find((h) => h.status === 401);
    assert.ok(unauthorized, 'the SDK learnt it from a 401');
    assert.equal(JSON.parse(unauthorized.body).data.nonce, challenge.nonce);
    await alice.waitForReadyOrFail(since, 20000);
    assertIssuedByIdp(world.server, alice, 1);
  });

  it('the SDKs logged no unexpected errors and threw none', () => {
    // Expected: the 401 that ends the session is logged by the SDK.
    world.assertNoSdkErrors([/authentication_required/]);
  });
});
