'use strict';
// layer-websdk 3.4.18: what changes a conversation after it exists — identities as the
// tokens described them, metadata, participants, deletion — and the end of a session by
// logout. Each change is made through the SDK and observed in the other users' SDKs.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { World, need, pairWithConversation } = require('../lib/world');
const { request } = require('../lib/idp');

describe('layer-websdk 3.4.18: conversation changes and logout', { timeout: 120000 }, () => {
  const world = new World();
  let alice;
  let bob;
  let carol;
  let conversationId;

  before(async () => {
    await world.start();
    ({ alice, bob, conversationId } = await pairWithConversation(world));
    carol = await world.addUser('carol');
    await carol.signIn();
  });

  after(() => world.cleanup());

  it('15. the identities carry the names from the identity tokens', async () => {
    const since = bob.mark();
    const sent = await alice.call('sendMessage', { conversationId, parts: [{ mimeType: 'text/plain', body: 'who am I?' }] });
    const received = await bob.waitFor('message-added', (d) => d.message.id === sent.id, { since });
    assert.equal(received.message.senderDisplayName, alice.account.display_name, 'the sender\'s display_name from her token');
    const conversation = await bob.call('conversation', { id: conversationId });
    assert.deepEqual(conversation.participantNames, [alice.account.display_name, bob.account.display_name].sort());
  });

  it('16. metadata set by one participant reaches the other', async () => {
    const since = bob.mark();
    await alice.call('setMetadata', { conversationId, properties: { title: 'renamed', 'settings.color': 'blue' } });
    const changed = await bob.waitFor('conversation-changed', (d) => d.conversation.id === conversationId
      && d.conversation.metadata && d.conversation.metadata.title === 'renamed'
      && d.conversation.metadata.settings && d.conversation.metadata.settings.color === 'blue',
    { since, what: 'the new metadata at bob' });
    assert.equal(changed.conversation.metadata.title, 'renamed');
  });

  it('17. a participant added later gets the conversation and its new messages; a removed one leaves it', async () => {
    const carolSince = carol.mark();
    const bobSince = bob.mark();
    await alice.call('addParticipants', { conversationId, userIds: [carol.userId] });
    const added = await carol.waitFor('conversation-added', (d) => d.conversation.id === conversationId, { since: carolSince, what: 'the conversation at carol' });
    assert.deepEqual(added.conversation.participants, [alice.userId, bob.userId, carol.userId].sort());
    assert.equal(added.conversation.unreadCount, 0, 'what was said before she joined is not news to her');
    await bob.waitFor('conversation-changed', (d) => d.conversation.id === conversationId && d.conversation.participants.includes(carol.userId),
      { since: bobSince, what: 'carol among the participants at bob' });

    const sent = await alice.call('sendMessage', { conversationId, parts: [{ mimeType: 'text/plain', body: 'welcome, carol' }] });
    const atCarol = await carol.waitFor('message-added', (d) => d.message.id === sent.id, { since: carolSince });
    assert.equal(atCarol.message.parts[0].body, 'welcome, carol');
    // Three participants: readStatus needs both others.
    await bob.waitFor('message-added', (d) => d.message.id === sent.id, { since: bobSince });
    await bob.call('markRead', { id: sent.id });
    const some = await alice.waitForMessage(sent.id, (m) => m.readStatus === 'SOME', { what: 'readStatus SOME after one of two readers' });
    assert.equal(some.recipientStatus[`layer:///identities/${carol.userId}`] !== 'read', true);
    const carolRead = carol.mark();
    await carol.call('markRead', { id: sent.id });
    await alice.waitForMessage(sent.id, (m) => m.readStatus === 'ALL', { what: 'readStatus ALL after both readers' });
    // The server's count for her, pushed after her receipt, reaches zero.
    const setsUnreadToZero = (packet) => packet.type === 'change' && packet.body.object.id === conversationId
      && Array.isArray(packet.body.data) && packet.body.data.some((op) => op.property === 'unread_message_count' && op.value === 0);
    await carol.waitFor('wire', (w) => w.kind === 'ws-in' && setsUnreadToZero(JSON.parse(w.frame)),
      { since: carolRead, what: 'unread_message_count 0 pushed to carol' });

    const bobSince2 = bob.mark();
    await alice.call('removeParticipants', { conversationId, userIds: [carol.userId] });
    await bob.waitFor('conversation-changed', (d) => d.conversation.id === conversationId && !d.conversation.participants.includes(carol.userId),
      { since: bobSince2, what: 'carol no longer among the participants at bob' });
  });

  it('18. a message deleted for everyone disappears at the other participants', async () => {
    const since = bob.mark();
    const sent = await alice.call('sendMessage', { conversationId, parts: [{ mimeType: 'text/plain', body: 'oops' }] });
    await bob.waitFor('message-added', (d) => d.message.id === sent.id, { since });
    // Bob's SDK sends a delivery receipt for every message it receives; deleting before that
    // receipt has landed would make it a 404 the SDK logs as an error (as Layer's would).
    await alice.waitForMessage(sent.id, (m) => m.deliveryStatus === 'ALL', { what: 'the delivery receipt before the delete' });
    await alice.call('deleteMessage', { id: sent.id, mode: 'all_participants' });
    await bob.waitFor('message-removed', (d) => d.id === sent.id, { since, what: 'the deleted message removed at bob' });
    const loaded = await bob.call('query', { model: 'messages', conversationId });
    assert.equal(loaded.data.some((m) => m.id === sent.id), false, 'gone from the server too');
  });

  it('19. logout ends the session: DELETE /sessions answers 204 and the token is refused afterwards', async () => {
    need(carol, 'carol signed in');
    const { sessionToken } = await carol.call('sessionToken');
    const since = carol.mark();
    await carol.call('logout');
    const deleted = carol.http(since).find((h) => h.method === 'DELETE' && h.url.includes('/sessions/'));
    assert.ok(deleted, 'the SDK sent DELETE /sessions/{token}');
    assert.equal(deleted.status, 204);
    const after = await request('GET', `${world.server.layerUrl}/conversations`, undefined, {
      accept: 'application/vnd.layer+json; version=2.0',
      authorization: `Layer session-token="${sessionToken}"`,
    });
    assert.equal(after.status, 401, 'the logged-out session token is refused');
    assert.equal(after.json && after.json.id, 'authentication_required');
  });

  it('the SDKs logged no unexpected errors and threw none', () => {
    // Expected: logout clears IndexedDB, which Node does not have (no persistence is used).
    world.assertNoSdkErrors([/Failed to delete database/]);
  });
});
