'use strict';
// The Platform API: Layer's own Node client, layer-api@2.3.3 (unmodified), drives every
// resource it has against the emulator, and what it does is observed in real layer-websdk
// 3.4.18 clients — a backend's message reaches every participant's socket and queries, an
// identity edit reaches followers, announcements arrive, blocks filter delivery, and a
// suspended user's session ends.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { World, need } = require('../lib/world');
const { request } = require('../lib/idp');
const { layerApi, platformRequest } = require('../lib/platform');

/** layer-api reports an HTTP error as err.status / err.body; this returns them. */
async function failure(promise) {
  try {
    const res = await promise;
    throw new Error(`expected an error, got HTTP ${res.status}: ${JSON.stringify(res.body)}`);
  } catch (err) {
    if (err.status === undefined) throw err;
    return err;
  }
}

describe('layer-api 2.3.3 against the emulator, seen by layer-websdk 3.4.18', { timeout: 180000 }, () => {
  const world = new World();
  let server;
  let api;
  let alice;
  let bob;
  let carol;
  let conversationId;

  before(async () => {
    server = await world.start();
    [alice, bob, carol] = await Promise.all([world.addUser('alice'), world.addUser('bob'), world.addUser('carol')]);
    await Promise.all([alice.signIn(), bob.signIn(), carol.signIn()]);
    api = await layerApi(server);
  });

  after(() => world.cleanup());

  it('P1. conversations: the backend creates one, both SDKs get it; get, user views, edits, delete', async () => {
    const [aliceSince, bobSince] = [alice.mark(), bob.mark()];
    const err = await failure(api.conversations.createAsync({}));
    assert.equal(err.status, 422);
    assert.equal(err.body.id, 'missing_property');
    assert.deepEqual(err.body.data, { property: 'participants' });

    const created = await api.conversations.createAsync({ participants: [alice.userId, bob.userId], metadata: { topic: 'support' } });
    assert.equal(created.status, 201);
    conversationId = created.body.id;
    assert.match(conversationId, /^layer:\/\/\/conversations\//);
    assert.deepEqual(created.body.participants, [alice.userId, bob.userId], 'creation order, user IDs (1.0)');
    for (const [user, since] of [[alice, aliceSince], [bob, bobSince]]) {
      const added = await user.waitFor('conversation-added', (d) => d.conversation.id === conversationId, { since, what: `the server's conversation at ${user.name}` });
      assert.deepEqual(added.conversation.participants, [alice.userId, bob.userId].sort());
      assert.equal(added.conversation.metadata.topic, 'support');
    }

    const got = await api.conversations.getAsync(conversationId);
    assert.equal(got.status, 200);
    assert.equal(got.body.id, conversationId);
    const mine = await api.conversations.getFromUserAsync(alice.userId, conversationId);
    assert.equal(mine.body.unread_message_count, 0);
    const all = await api.conversations.getAllFromUserAsync(bob.userId, { page_size: 10 });
    assert.equal(all.status, 200);
    assert.ok(all.body.some((c) => c.id === conversationId));

    const metadataSince = bob.mark();
    const edited = await api.conversations.setMetadataPropertiesAsync(conversationId, { 'settings.priority': 2, title: 'Help' });
    assert.equal(edited.status, 204);
    assert.equal(edited.body, '', 'an empty 204 body');
    await bob.waitFor('conversation-changed', (d) => d.conversation.id === conversationId && d.conversation.metadata.title === 'Help'
      && d.conversation.metadata.settings && d.conversation.metadata.settings.priority === '2', { since: metadataSince, what: 'the metadata at bob' });
    assert.equal((await api.conversations.deleteMetadataPropertiesAsync(conversationId, { title: true })).status, 204);

    const carolSince = carol.mark();
    assert.equal((await api.conversations.addParticipantsAsync(conversationId, [carol.userId])).status, 204);
    await carol.waitFor('conversation-added', (d) => d.conversation.id === conversationId, { since: carolSince, what: 'the conversation at carol' });
    assert.equal((await api.conversations.removeParticipantsAsync(conversationId, [carol.userId])).status, 204);
    const after = await api.conversations.getAsync(conversationId);
    assert.deepEqual(after.body.participants, [alice.userId, bob.userId]);
    assert.deepEqual(after.body.metadata, { topic: 'support', settings: { priority: '2' } });

    // A conversation to delete: replaceParticipants and edit, then delete → 410.
    const other = await api.conversations.createDedupeAsync(require('node:crypto').randomUUID(), { participants: [alice.userId] });
    const edit = await api.conversations.editAsync(other.body.id, [
      { operation: 'add', property: 'participants', value: bob.userId },
      { operation: 'remove', property: 'participants', value: bob.userId },
      { operation: 'set', property: 'participants', value: [alice.userId, carol.userId] },
    ]);
    assert.equal(edit.status, 204);
    assert.equal((await api.conversations.replaceParticipantsAsync(other.body.id, [carol.userId])).status, 204);
    assert.equal((await api.conversations.deleteAsync(other.body.id)).status, 204);
    const gone = await failure(api.conversations.getAsync(other.body.id));
    assert.equal(gone.status, 410);
    assert.equal(gone.body.id, 'object_deleted');
  });

  it('P2. messages from a user and from a named sender reach every participant and their queries', async () => {
    need(conversationId, 'the conversation of P1');
    const [aliceSince, bobSince] = [alice.mark(), bob.mark()];
    const fromUser = await api.messages.sendTextFromUserAsync(conversationId, alice.userId, 'sent by the backend for alice');
    assert.equal(fromUser.status, 201);
    assert.equal(fromUser.body.parts[0].body, 'sent by the backend for alice');
    assert.equal(fromUser.body.sender.user_id, alice.userId);
    const messageId = fromUser.body.id;
    for (const [user, since] of [[alice, aliceSince], [bob, bobSince]]) {
      const added = await user.waitFor('message-added', (d) => d.message.id === messageId, { since, what: `the server-sent message at ${user.name}` });
      assert.equal(added.message.sender, alice.userId);
      assert.equal(added.message.parts[0].body, 'sent by the backend for alice');
    }

    const named = await api.messages.sendTextFromNameAsync(conversationId, 'Admin', 'a system notice');
    assert.equal(named.status, 201);
    assert.equal(named.body.sender.name, 'Admin');
    const atBob = await bob.waitFor('message-added', (d) => d.message.id === named.body.id, { since: bobSince, what: 'the Admin message at bob' });
    assert.equal(atBob.message.senderDisplayName, 'Admin');
    assert.equal(atBob.message.isUnread, true);

    const err = await failure(api.messages.sendAsync(conversationId, {}));
    assert.equal(err.status, 422);
    assert.equal(err.body.id, 'missing_property');

    const list = await api.messages.getAllAsync(conversationId, { page_size: 10 });
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.slice(0, 2).map((m) => m.id), [named.body.id, messageId], 'newest first');
    const one = await api.messages.getAsync(messageId, conversationId);
    assert.equal(one.body.id, messageId);
    const bobs = await api.messages.getAllFromUserAsync(bob.userId, conversationId);
    assert.equal(bobs.body[0].is_unread, true);
    const bobsOne = await api.messages.getFromUserAsync(bob.userId, messageId);
    assert.equal(bobsOne.body.id, messageId, 'the full layer:/// id');
    const notFound = await failure(api.messages.sendTextFromNameAsync('layer:///conversations/00000000-0000-4000-8000-000000000000', 'Admin', 'x'));
    assert.equal(notFound.status, 404);
    assert.equal(notFound.body.id, 'not_found');
  });

  it('P3. announcements arrive at their recipients\' sockets and under GET /announcements', async () => {
    const since = alice.mark();
    const sent = await api.announcements.sendAsync({
      recipients: [alice.userId, bob.userId],
      sender: { name: 'The System' },
      parts: [{ body: 'maintenance at midnight', mime_type: 'text/plain' }],
      notification: { text: 'maintenance', sound: 'chime.aiff' },
    });
    assert.equal(sent.status, 202);
    for (const key of ['url', 'recipients', 'id', 'sender', 'parts']) assert.ok(sent.body[key], `the announcement has ${key}`);
    const isCreate = (w) => {
      if (w.kind !== 'ws-in') return false;
      const packet = JSON.parse(w.frame);
      return packet.type === 'change' && packet.body.operation === 'create' && packet.body.object.id === sent.body.id;
    };
    await alice.waitFor('wire', isCreate, { since, what: 'the Announcement create on alice\'s socket' });
    const { sessionToken } = await alice.call('sessionToken');
    const listed = await request('GET', `${server.layerUrl}/announcements`, undefined, { authorization: `Layer session-token="${sessionToken}"` });
    assert.equal(listed.status, 200);
    assert.equal(listed.json[0].id, sent.body.id);
    assert.equal(listed.json[0].parts[0].body, 'maintenance at midnight');
    const err = await failure(api.announcements.sendAsync({}));
    assert.deepEqual([err.status, err.body.data.property], [422, 'recipients']);
  });

  it('P4. identities: create, get, edit, replace, delete; an edit reaches a follower\'s SDK', async () => {
    need(conversationId, 'the conversation of P1');
    const dana = `dana-${Date.now()}`;
    const fields = { display_name: 'Dana', first_name: 'Dana', last_name: 'Doe', phone_number: '+15550123', email_address: 'dana@example.invalid', metadata: { level: '1' } };
    const created = await api.identities.createAsync(dana, fields);
    assert.equal(created.status, 201);
    assert.equal(created.body, '');
    assert.equal((await failure(api.identities.createAsync(dana, fields))).status, 409);
    const got = await api.identities.getAsync(dana);
    for (const [key, value] of Object.entries(fields)) assert.deepEqual(got.body[key], value, key);
    assert.equal((await api.identities.editAsync(dana, { last_name: 'Dodo', 'metadata.level': '2' })).status, 204);
    const edited = await api.identities.getAsync(dana);
    assert.equal(edited.body.last_name, 'Dodo');
    assert.deepEqual(edited.body.metadata, { level: '2' });
    assert.equal((await api.identities.replaceAsync(dana, { display_name: 'Dana D.' })).status, 204);
    const replaced = await api.identities.getAsync(dana);
    assert.equal(replaced.body.display_name, 'Dana D.');
    assert.equal(replaced.body.first_name, null);
    assert.equal((await api.identities.deleteAsync(dana)).status, 204);
    assert.equal((await failure(api.identities.getAsync('never-named'))).status, 404);

    // Alice's identity, edited by the backend, reaches Bob, who shares a conversation with her.
    const since = bob.mark();
    assert.equal((await api.identities.editAsync(alice.userId, { display_name: 'Alice (from the backend)' })).status, 204);
    const changed = await bob.waitFor('identity-changed', (d) => d.userId === alice.userId && d.displayName === 'Alice (from the backend)',
      { since, what: 'alice\'s new display name at bob' });
    assert.ok(changed.properties.includes('displayName'));
  });

  it('P5. block lists: messages between the two never pass, and the blocked user\'s conversations stay unseen', async () => {
    need(conversationId, 'the conversation of P1');
    const blocked = await api.blocklist.blockAsync(bob.userId, alice.userId);
    assert.equal(blocked.status, 204);
    assert.equal(blocked.body, '');
    assert.deepEqual((await api.blocklist.getAsync(bob.userId)).body, [{ user_id: alice.userId }]);

    const since = bob.mark();
    const hidden = await api.messages.sendTextFromUserAsync(conversationId, alice.userId, 'bob blocks me');
    const shown = await api.messages.sendTextFromNameAsync(conversationId, 'Admin', 'after the blocked one');
    // The socket delivers in order: once the later message is in, the earlier one would be too.
    await bob.waitFor('message-added', (d) => d.message.id === shown.body.id, { since, what: 'the Admin message at bob' });
    bob.assertNo('message-added', (d) => d.message.id === hidden.body.id, { since, what: 'the blocked user\'s message at bob' });
    const bobsView = await api.messages.getAllFromUserAsync(bob.userId, conversationId);
    assert.ok(!bobsView.body.some((m) => m.id === hidden.body.id), 'absent from bob\'s list');
    const alicesView = await api.messages.getAllFromUserAsync(alice.userId, conversationId);
    assert.ok(alicesView.body.some((m) => m.id === hidden.body.id), 'alice sees her own message');

    // Both ways in a one-to-one conversation: what Bob's SDK sends never reaches Alice's.
    const aliceSince = alice.mark();
    const fromBob = await bob.call('sendMessage', { conversationId, parts: [{ mimeType: 'text/plain', body: 'alice is blocked' }] });
    const later = await api.messages.sendTextFromNameAsync(conversationId, 'Admin', 'after bob\'s');
    await alice.waitFor('message-added', (d) => d.message.id === later.body.id, { since: aliceSince, what: 'the Admin message at alice' });
    alice.assertNo('message-added', (d) => d.message.id === fromBob.id, { since: aliceSince, what: 'the blocker\'s message at alice' });

    // A conversation Alice's SDK creates with Bob is never seen by Bob's.
    const bobSince = bob.mark();
    const made = await alice.call('createConversation', { participants: [bob.userId], distinct: false });
    assert.equal(made.result, 'Created');
    const server2 = await api.conversations.createAsync({ participants: [alice.userId, bob.userId] });
    await bob.waitFor('conversation-added', (d) => d.conversation.id === server2.body.id, { since: bobSince, what: 'the server\'s conversation at bob' });
    bob.assertNo('conversation-added', (d) => d.conversation.id === made.conversation.id, { since: bobSince, what: 'alice\'s conversation at bob' });
    assert.equal((await failure(api.conversations.getFromUserAsync(bob.userId, made.conversation.id))).status, 404);

    assert.equal((await api.blocklist.unblockAsync(bob.userId, alice.userId)).status, 204);
    assert.deepEqual((await api.blocklist.getAsync(bob.userId)).body, []);
  });

  it('P6. a suspended user\'s session ends and a new one is refused', async () => {
    const since = carol.mark();
    const res = await platformRequest(server, 'PATCH', `/users/${encodeURIComponent(carol.userId)}`,
      [{ operation: 'set', property: 'suspended', value: true }]);
    assert.equal(res.status, 202);
    // The socket closes and the session is gone: the SDK is challenged again, and the
    // answer with a fresh identity token is refused.
    await carol.waitFor('challenge', null, { since, what: 'a new challenge at carol' });
    await carol.waitFor('authenticated-error', null, { since, what: 'the refused session at carol' });
    const user = await platformRequest(server, 'GET', `/users/${encodeURIComponent(carol.userId)}`);
    assert.equal(user.json.suspended, true);
  });

  it('the SDKs logged no errors and threw none', () => {
    // Carol's ended and refused sessions are the errors provoked on purpose.
    world.assertNoSdkErrors([/authentication_required/, /suspended/]);
  });
});
