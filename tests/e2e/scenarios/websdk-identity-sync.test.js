'use strict';
// Identity sync with layer-websdk 3.4.18: alice changes her display name at layer-idp, and
// bob's SDK shows the new name on her identity and her messages, with no new login by alice.
// The server runs with the emulator and no sync settings: sync is on by default against the
// emulator in the same process.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { World, need, pairWithConversation } = require('../lib/world');
const idp = require('../lib/idp');

describe('layer-websdk 3.4.18: a display name changed at layer-idp reaches other users', { timeout: 120000 }, () => {
  const world = new World();
  let alice;
  let bob;
  let conversationId;
  let messageId;

  before(async () => {
    await world.start();
    ({ alice, bob, conversationId } = await pairWithConversation(world));
  });

  after(() => world.cleanup());

  it('1. bob sees alice\'s message under the name she signed up with', async () => {
    const since = bob.mark();
    const sent = await alice.call('sendMessage', { conversationId, parts: [{ mimeType: 'text/plain', body: 'hello from alice' }] });
    messageId = sent.id;
    const seen = await bob.waitForMessage(messageId, () => true, { since, what: 'alice\'s message at bob' });
    assert.equal(seen.sender, alice.userId);
    assert.equal(seen.senderDisplayName, alice.account.display_name);
  });

  it('2. alice renames herself at layer-idp; bob\'s SDK shows the new name without alice logging in again', async () => {
    need(messageId, 'scenario 1 (alice\'s message at bob)');
    const challengesBefore = alice.challenges.length;
    const newName = `Alice Renamed ${Date.now()}`;

    // Alice's app changes her profile with her layer-idp session, from a real password login.
    const session = await idp.openSession(world.server.idpUrl, alice.account);
    const since = bob.mark();
    const res = await idp.request('PATCH', `${world.server.idpUrl}/users/me`, { display_name: newName },
      { authorization: `Bearer ${session.session_token}` });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.display_name, newName);

    // The change reaches bob's socket as an Identity update, and his SDK applies it.
    const changed = await bob.waitFor('identity-changed', (d) => d.userId === alice.userId && d.displayName === newName,
      { since, what: 'alice\'s new display name at bob' });
    assert.ok(changed.properties.includes('displayName'), JSON.stringify(changed));
    const identity = await bob.call('identity', { userId: alice.userId });
    assert.equal(identity.displayName, newName);
    const message = await bob.call('message', { id: messageId });
    assert.equal(message.senderDisplayName, newName, 'alice\'s earlier message shows her new name');

    // A message alice sends now carries it too.
    const later = bob.mark();
    const sent = await alice.call('sendMessage', { conversationId, parts: [{ mimeType: 'text/plain', body: 'renamed' }] });
    const seen = await bob.waitForMessage(sent.id, () => true, { since: later, what: 'alice\'s second message at bob' });
    assert.equal(seen.senderDisplayName, newName);

    // Alice's SDK never had to authenticate again.
    assert.equal(alice.challenges.length, challengesBefore, 'no new challenge at alice');
  });

  it('the SDKs logged no errors and threw none', () => {
    world.assertNoSdkErrors();
  });
});
