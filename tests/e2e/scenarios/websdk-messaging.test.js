'use strict';
// layer-websdk 3.4.18, two users: authentication through the challenge, a conversation,
// a three-part message, receipts up to readStatus ALL, and rich content. Each step builds on
// the previous one, as an app's first minutes would.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { World, need, assertIssuedByIdp } = require('../lib/world');

describe('layer-websdk 3.4.18: two users message each other', { timeout: 120000 }, () => {
  const world = new World();
  let alice;
  let bob;
  let conversationId;
  let messageId;

  before(async () => {
    await world.start();
    // Alice's app logs in with POST /authenticate per nonce; Bob's keeps a layer-idp session
    // and asks POST /identity_tokens per nonce. Both are flows real apps use.
    [alice, bob] = await Promise.all([
      world.addUser('alice', { login: 'authenticate' }),
      world.addUser('bob', { login: 'session' }),
    ]);
  });

  after(() => world.cleanup());

  it('1. both users sign up, answer the SDK\'s challenge with a real login, and reach ready', async () => {
    const [aliceReady, bobReady] = await Promise.all([alice.signIn(), bob.signIn()]);

    for (const [user, ready] of [[alice, aliceReady], [bob, bobReady]]) {
      assert.equal(user.challenges.length, 1, `${user.name} was challenged once`);
      assert.ok(user.challenges[0].nonce, `${user.name}'s challenge carried a nonce`);
      assertIssuedByIdp(world.server, user);
      assert.equal(ready.userId, user.userId, `${user.name}'s client is the signed-up user`);
      assert.equal(ready.identityId, `layer:///identities/${encodeURIComponent(user.userId)}`);
      assert.equal(ready.displayName, user.account.display_name, 'display_name from the token reached the SDK');

      const session = await user.call('session');
      assert.deepEqual(session, { isAuthenticated: true, isReady: true, userId: user.userId, hasSessionToken: true });

      const sessions = user.http().filter((h) => h.method === 'POST' && h.url.endsWith('/sessions'));
      assert.equal(sessions.length, 1, `${user.name}'s SDK posted one identity token`);
      assert.equal(sessions[0].status, 201);
      const sent = JSON.parse(sessions[0].requestBody);
      assert.equal(sent.app_id, world.server.appId);
      assert.equal(sent.identity_token, user.challenges[0].token);
    }

    // signIn also waited for each socket's first packet (counter 0), which verifies it;
    // the socket speaks Client API 2.0.
    for (const user of [alice, bob]) {
      const opened = user.wire().find((w) => w.kind === 'ws-open');
      assert.equal(opened.protocol, 'layer-2.0', 'the emulator echoed the subprotocol');
      assert.match(user.wire().find((w) => w.kind === 'ws-connecting').url, /[?&]session_token=[A-Za-z0-9_-]+(&|$)/);
    }
  });

  it('2. a conversation created with client.createConversation appears at the other user', async () => {
    need(bob.events.find((e) => e.name === 'ready'), 'scenario 1 (both users ready)');
    const bobSince = bob.mark();
    const created = await alice.call('createConversation', {
      participants: [bob.userId],
      distinct: false,
      metadata: { title: 'e2e: alice and bob' },
    });
    assert.equal(created.result, 'Created', 'the emulator created a new conversation');
    conversationId = created.conversation.id;
    assert.match(conversationId, /^layer:\/\/\/conversations\/[0-9a-f-]{36}$/);
    assert.deepEqual(created.conversation.participants, [alice.userId, bob.userId].sort());
    assert.equal(created.conversation.syncState, 'SYNCED');

    const seen = await bob.waitFor('conversation-added', (d) => d.conversation.id === conversationId, { since: bobSince, what: `conversation ${conversationId} at bob` });
    assert.deepEqual(seen.conversation.participants, [alice.userId, bob.userId].sort());
    assert.deepEqual(seen.conversation.metadata, { title: 'e2e: alice and bob' });
    assert.equal(seen.conversation.unreadCount, 0);
  });

  const textBody = 'Hello Bob \u2014 \u00fcn\u00efc\u00f8d\u00e9 \u2713 \ud83d\udc4b';
  const jsonBody = JSON.stringify({ lat: 37.7749, lon: -122.4194, tags: ['a', 'b'], nested: { ok: true } });
  const coordinate = Buffer.from(JSON.stringify({ lat: 52.52, lon: 13.405 }), 'utf8');

  it('3. a text/plain, an application/json and a location/coordinate part arrive byte-identical', async () => {
    need(conversationId, 'scenario 2 (conversation)');
    const bobSince = bob.mark();
    const aliceSince = alice.mark();
    const sent = await alice.call('sendMessage', {
      conversationId,
      parts: [
        { mimeType: 'text/plain', body: textBody },
        { mimeType: 'application/json', body: jsonBody },
        { mimeType: 'location/coordinate', base64: coordinate.toString('base64') },
      ],
    });
    messageId = sent.id;
    assert.match(messageId, /^layer:\/\/\/messages\/[0-9a-f-]{36}$/);
    assert.equal(sent.conversationId, conversationId);
    assert.equal(typeof sent.position, 'number', 'the emulator gave the message a position');

    // The SDK sent the non-text part base64-encoded: the emulator must store it as such.
    const create = alice.frames(aliceSince).find((f) => f.direction === 'out' && f.packet.body && f.packet.body.method === 'Message.create');
    assert.ok(create, 'alice sent Message.create over the WebSocket');
    assert.deepEqual(create.packet.body.data.parts[2], { mime_type: 'location/coordinate', body: coordinate.toString('base64'), encoding: 'base64' });

    const received = await bob.waitFor('message-added', (d) => d.message.id === messageId, { since: bobSince, what: `message ${messageId} at bob` });
    const m = received.message;
    assert.equal(m.conversationId, conversationId);
    assert.equal(m.sender, alice.userId);
    assert.equal(m.isRead, false, 'a new message from someone else is unread');
    assert.equal(m.parts.length, 3, 'all three parts arrived');
    assert.deepEqual(m.parts.map((p) => p.mimeType), ['text/plain', 'application/json', 'location/coordinate']);
    assert.equal(m.parts[0].body, textBody);
    assert.equal(Buffer.from(m.parts[0].body, 'utf8').equals(Buffer.from(textBody, 'utf8')), true);
    assert.equal(m.parts[1].body, jsonBody);
    assert.equal(m.parts[2].bodyKind, 'blob', 'the non-text part is a Blob at the receiver');
    assert.equal(Buffer.from(m.parts[2].base64, 'base64').equals(coordinate), true, 'location/coordinate bytes identical');
  });

  it('4. the automatic delivery receipt, then message.isRead = true, take the sender to deliveryStatus and readStatus ALL', async () => {
    need(messageId, 'scenario 3 (message)');
    // Bob's SDK sent a delivery receipt on its own when the message arrived.
    const delivered = await alice.waitForMessage(messageId, (m) => m.deliveryStatus === 'ALL', { what: 'deliveryStatus ALL at alice' });
    assert.equal(delivered.readStatus, 'NONE', 'delivered, not yet read');
    assert.equal(delivered.recipientStatus[`layer:///identities/${bob.userId}`], 'delivered');
    // Bob's process reports its side of the exchange independently of Alice's: wait for it.
    await bob.waitFor('wire', (w) => w.kind === 'http' && w.url.endsWith('/receipts'), { what: 'bob\'s delivery receipt' });
    const receipts = bob.http().filter((h) => h.method === 'POST' && h.url.endsWith('/receipts'));
    assert.deepEqual(receipts.map((h) => [JSON.parse(h.requestBody).type, h.status]), [['delivery', 204]]);

    const aliceSince = alice.mark();
    const bobSince = bob.mark();
    await bob.call('markRead', { id: messageId });
    const read = await alice.waitForMessage(messageId, (m) => m.readStatus === 'ALL', { since: aliceSince, what: 'readStatus ALL at alice' });
    assert.equal(read.deliveryStatus, 'ALL');
    assert.equal(read.recipientStatus[`layer:///identities/${bob.userId}`], 'read');
    assert.equal(read.recipientStatus[`layer:///identities/${alice.userId}`], 'read');

    await bob.waitFor('wire', (w) => w.kind === 'http' && w.url.endsWith('/receipts') && w.requestBody && JSON.parse(w.requestBody).type === 'read', { since: bobSince, what: 'bob\'s read receipt' });
    const readReceipt = bob.http(bobSince).find((h) => h.url.endsWith('/receipts'));
    assert.equal(readReceipt.status, 204);
    // Bob's own copy is read, and the emulator told Bob's devices the conversation has
    // nothing unread any more.
    const bobView = await bob.call('message', { id: messageId });
    assert.equal(bobView.isRead, true);
    await bob.waitFor('wire', (w) => {
      if (w.kind !== 'ws-in') return false;
      const p = JSON.parse(w.frame);
      return p.type === 'change' && p.body.operation === 'update' && p.body.object.id === conversationId
        && p.body.data.some((op) => op.property === 'unread_message_count' && op.value === 0);
    }, { since: bobSince, what: 'an unread_message_count 0 patch for the conversation at bob' });
  });

  it('5. parts over 2 KB go through rich content and fetchContent() returns the exact bytes', async () => {
    need(conversationId, 'scenario 2 (conversation)');
    const text = Array.from({ length: 60 }, (_, i) => `line ${String(i).padStart(2, '0')}: the quick brown fox jumps over the lazy dog.`).join('\n');
    assert.ok(Buffer.byteLength(text) > 2048);
    const binary = crypto.randomBytes(5000);
    const aliceSince = alice.mark();
    const bobSince = bob.mark();

    const sent = await alice.call('sendMessage', {
      conversationId,
      parts: [
        { mimeType: 'text/plain', body: text },
        { mimeType: 'application/octet-stream', base64: binary.toString('base64') },
      ],
    });

    // Alice's SDK: POST /content → 201, PUT the bytes to upload_url → 2xx, then Message.create
    // names the content instead of carrying a body.
    const http = alice.http(aliceSince);
    const contentPosts = http.filter((h) => h.method === 'POST' && /\/content$/.test(h.url));
    assert.deepEqual(contentPosts.map((h) => h.status), [201, 201], 'one POST /content per large part');
    const uploads = http.filter((h) => h.method === 'PUT');
    assert.equal(uploads.length, 2, 'both parts uploaded');
    for (const upload of uploads) assert.ok(upload.status >= 200 && upload.status < 300, `upload answered ${upload.status}`);
    const create = alice.frames(aliceSince).find((f) => f.direction === 'out' && f.packet.body && f.packet.body.method === 'Message.create');
    for (const part of create.packet.body.data.parts) {
      assert.ok(part.content && /^layer:\/\/\/content\//.test(part.content.id), 'part sent as rich content');
      assert.equal(part.body, undefined);
    }

    const received = await bob.waitFor('message-added', (d) => d.message.id === sent.id, { since: bobSince, what: `rich message ${sent.id} at bob` });
    assert.deepEqual(received.message.parts.map((p) => p.hasContent), [true, true]);
    assert.deepEqual(received.message.parts.map((p) => p.mimeType), ['text/plain', 'application/octet-stream']);

    const gotText = await bob.call('fetchContent', { messageId: sent.id, index: 0 });
    assert.equal(gotText.bodyKind, 'string', 'text content is handed to the app as a string');
    assert.equal(Buffer.from(gotText.base64, 'base64').toString('utf8'), text);
    const gotBinary = await bob.call('fetchContent', { messageId: sent.id, index: 1 });
    assert.equal(Buffer.from(gotBinary.base64, 'base64').equals(binary), true, 'binary content byte-identical');
  });

  it('5b. 2048 characters of non-ASCII text go inline, as the SDK measures them', async () => {
    need(conversationId, 'scenario 2 (conversation)');
    // body.length counts UTF-16 code units: 2048 here, though the text is 5 120 bytes of UTF-8.
    const text = '\u00e9\u0436\u4e2d\ud83d\ude00'.repeat(409) + '\u00e9\u0436\u4e2d';
    assert.equal(text.length, 2048);
    assert.ok(Buffer.byteLength(text) > 4096);
    const bobSince = bob.mark();
    const aliceSince = alice.mark();
    const sent = await alice.call('sendMessage', { conversationId, parts: [{ mimeType: 'text/plain', body: text }] });
    const create = alice.frames(aliceSince).find((f) => f.direction === 'out' && f.packet.body && f.packet.body.method === 'Message.create');
    assert.ok(create, 'alice sent Message.create');
    assert.equal(create.packet.body.data.parts[0].body, text, 'the SDK sent the text inline, not as rich content');
    const response = alice.frames(aliceSince).find((f) => f.direction === 'in' && f.packet.type === 'response'
      && f.packet.body.request_id === create.packet.body.request_id);
    assert.equal(response.packet.body.success, true, `the emulator accepted it: ${JSON.stringify(response.packet.body.data)}`);
    const received = await bob.waitFor('message-added', (d) => d.message.id === sent.id, { since: bobSince, what: `message ${sent.id} at bob` });
    assert.equal(received.message.parts[0].body, text);
  });

  it('the SDKs logged no errors and threw none', () => world.assertNoSdkErrors());
});
