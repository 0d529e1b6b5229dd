'use strict';
// layer-websdk 3.4.18 beyond the first minutes: a second device that loads its state with
// queries, receipts that reach every device of a user, mark-all-read, distinct
// conversations found again, and typing indicators.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { World, need, pairWithConversation } = require('../lib/world');

describe('layer-websdk 3.4.18: devices, queries, distinct conversations, typing', { timeout: 120000 }, () => {
  const world = new World();
  let alice;
  let bob;
  let bob2;
  let conversationId;
  const messages = [];

  before(async () => {
    await world.start();
    ({ alice, bob, conversationId } = await pairWithConversation(world));
    for (const text of ['first of two', 'second of two']) {
      const since = bob.mark();
      const sent = await alice.call('sendMessage', { conversationId, parts: [{ mimeType: 'text/plain', body: text }] });
      await bob.waitFor('message-added', (d) => d.message.id === sent.id, { since });
      // Delivered by Bob's first device before the second one exists.
      await alice.waitForMessage(sent.id, (m) => m.deliveryStatus === 'ALL');
      messages.push(sent);
    }
  });

  after(() => world.cleanup());

  it('10. a second device of the receiver loads the conversation and its messages through queries', async () => {
    bob2 = await world.addDevice(bob, 'bob-2');
    await bob2.signIn();
    assert.equal(bob2.challenges.length, 1, 'the second device logged in on its own');

    const conversations = await bob2.call('query', { model: 'conversations' });
    assert.equal(conversations.totalSize, 1, 'Layer-Count: one conversation');
    assert.equal(conversations.pagedToEnd, true);
    const [conversation] = conversations.data;
    assert.equal(conversation.id, conversationId);
    assert.deepEqual(conversation.participants, [alice.userId, bob.userId].sort());
    assert.equal(conversation.unreadCount, 2, 'both messages unread for bob');
    assert.equal(conversation.lastMessageId, messages[1].id);

    const loaded = await bob2.call('query', { model: 'messages', conversationId });
    assert.equal(loaded.totalSize, 2, 'Layer-Count: two messages');
    assert.deepEqual(loaded.data.map((m) => m.id), [messages[1].id, messages[0].id], 'newest first');
    assert.deepEqual(loaded.data.map((m) => m.parts[0].body), ['second of two', 'first of two']);
    for (const m of loaded.data) {
      assert.equal(m.sender, alice.userId);
      assert.equal(m.isRead, false);
      assert.equal(m.recipientStatus[`layer:///identities/${bob.userId}`], 'delivered', 'the first device\'s receipt is on the server');
    }
    assert.ok(loaded.data[0].position > loaded.data[1].position, 'positions increase with each message');

    // The sender's view from a query: per-viewer serialization.
    const aliceView = await alice.call('query', { model: 'messages', conversationId });
    for (const m of aliceView.data) {
      assert.equal(m.isRead, true, 'the sender\'s own message is read for the sender');
      assert.equal(m.deliveryStatus, 'ALL');
      assert.equal(m.readStatus, 'NONE');
    }
  });

  it('11. a read receipt from one device reaches the user\'s other devices and the sender', async () => {
    need(bob2, 'scenario 10 (second device)');
    const since2 = bob2.mark();
    await bob.call('markRead', { id: messages[0].id });
    await alice.waitForMessage(messages[0].id, (m) => m.readStatus === 'ALL', { what: 'readStatus ALL at alice' });
    await bob2.waitForMessage(messages[0].id, (m) => m.isRead === true, { since: since2, what: 'the message read on bob\'s second device' });
    await bob2.waitFor('conversation-changed', (d) => d.conversation.id === conversationId && d.conversation.unreadCount === 1,
      { since: since2, what: 'one unread message left on bob\'s second device' });
    const other = await bob2.call('message', { id: messages[1].id });
    assert.equal(other.isRead, false, 'only the message that was read');
  });

  it('12. marking all messages read on one device makes every message read everywhere', async () => {
    need(bob2, 'scenario 10 (second device)');
    const since1 = bob.mark();
    await bob2.call('markAllRead', { conversationId });
    await alice.waitForMessage(messages[1].id, (m) => m.readStatus === 'ALL', { what: 'readStatus ALL at alice after mark-all-read' });
    await bob.waitForMessage(messages[1].id, (m) => m.isRead === true, { since: since1, what: 'the last message read on bob\'s first device' });
    const conversations = await bob.call('query', { model: 'conversations' });
    assert.equal(conversations.data[0].unreadCount, 0, 'nothing unread on the server');
  });

  it('13. a distinct conversation asked for again by a device that does not hold it is found, not duplicated', async () => {
    const carol = await world.addUser('carol');
    const created = await alice.call('createConversation', { participants: [carol.userId], distinct: true, metadata: { topic: 'lunch' } });
    assert.equal(created.result, 'Created');

    // Carol signs in only now: her client has never seen that conversation.
    await carol.signIn();
    const found = await carol.call('createConversation', { participants: [alice.userId], distinct: true });
    assert.equal(found.result, 'Found', 'the emulator returned the existing distinct conversation');
    assert.equal(found.conversation.id, created.conversation.id, 'the SDK adopted the existing id');
    assert.deepEqual(found.conversation.metadata, { topic: 'lunch' });
    assert.deepEqual(found.conversation.participants, [alice.userId, carol.userId].sort());

    const mismatch = await carol.call('createConversation', { participants: [alice.userId], distinct: true, metadata: { topic: 'dinner' } });
    assert.equal(mismatch.result, 'FoundMismatch', 'different metadata: found, with the server\'s metadata');
    assert.equal(mismatch.conversation.id, created.conversation.id);
    assert.deepEqual(mismatch.conversation.metadata, { topic: 'lunch' });
  });

  it('14. typing indicators reach the other participant', async () => {
    const since = bob.mark();
    await alice.call('typing', { conversationId, state: 'started' });
    await bob.waitFor('typing', (d) => d.conversationId === conversationId && d.typing.includes(alice.userId), { since, what: 'alice typing at bob' });
    await alice.call('typing', { conversationId, state: 'finished' });
    await bob.waitFor('typing', (d) => d.conversationId === conversationId && d.typing.length === 0 && d.paused.length === 0,
      { since, what: 'alice no longer typing at bob' });
    alice.assertNo('typing', (d) => d.typing.includes(alice.userId), { what: 'alice\'s own typing echoed back to her' });
  });

  it('the SDKs logged no errors and threw none', () => world.assertNoSdkErrors());
});
