'use strict';
// @layerhq/web-xdk 4.0.6 core (Client API 3.0): the same flow as the WebSDK scenarios —
// challenge with a real login, conversation, a message with several parts, receipts up to
// readStatus ALL — with the XDK's own wire shapes (layer-3.0, client-generated part ids,
// mime types with attributes, strict packet counters).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { World, need, assertIssuedByIdp } = require('../lib/world');
const { mock } = require('../lib/layer');

describe('@layerhq/web-xdk 4.0.6 core: two users message each other', { timeout: 120000 }, () => {
  const world = new World();
  let alice;
  let bob;
  let conversationId;
  let messageId;

  before(async () => {
    await world.start();
    [alice, bob] = await Promise.all([
      world.addUser('alice', { sdk: 'xdk' }),
      world.addUser('bob', { sdk: 'xdk', login: 'session' }),
    ]);
  });

  after(() => world.cleanup());

  it('9a. both users authenticate through Layer.init\'s client and reach ready', async () => {
    const [aliceReady, bobReady] = await Promise.all([alice.signIn(), bob.signIn()]);
    for (const [user, ready] of [[alice, aliceReady], [bob, bobReady]]) {
      assertIssuedByIdp(world.server, user);
      assert.equal(ready.userId, user.userId);
      assert.equal(ready.displayName, user.account.display_name);
      const opened = user.wire().find((w) => w.kind === 'ws-open');
      assert.equal(opened.protocol, 'layer-3.0', 'the emulator echoed the XDK\'s subprotocol');
    }
  });

  const root = JSON.stringify({ text: 'Hello Bob (XDK) \u2713' });
  const extra = JSON.stringify({ lat: 37.77, lon: -122.41 });
  const coordinate = Buffer.from([0x00, 0x01, 0xfe, 0xff, 0x7f, 0x80, 0x0a, 0x0d]);

  it('9b. a conversation and a message with three parts reach the other user intact', async () => {
    need(bob.events.find((e) => e.name === 'ready'), 'scenario 9a (both users ready)');
    const bobSince = bob.mark();
    const created = await alice.call('createConversation', { participants: [bob.userId], metadata: { title: 'xdk' } });
    conversationId = created.conversation.id;
    await bob.waitFor('conversation-added', (d) => d.conversation.id === conversationId, { since: bobSince });

    const aliceSince = alice.mark();
    const sent = await alice.call('sendMessage', {
      conversationId,
      parts: [
        { mimeType: 'application/vnd.layer.text+json;role=root', body: root },
        { mimeType: 'application/json;role=extra', body: extra },
        { mimeType: 'location/coordinate;role=extra', base64: coordinate.toString('base64') },
      ],
    });
    messageId = sent.id;

    // The XDK names its parts itself; the emulator must keep those ids.
    const create = alice.frames(aliceSince).find((f) => f.direction === 'out' && f.packet.body && f.packet.body.method === 'Message.create');
    assert.ok(create, 'alice sent Message.create');
    const sentParts = create.packet.body.data.parts;
    for (const part of sentParts) assert.match(part.id, /^layer:\/\/\/messages\/[0-9a-f-]{36}\/parts\/[0-9a-f-]{36}$/);

    const received = await bob.waitFor('message-added', (d) => d.message.id === messageId, { since: bobSince, what: `message ${messageId} at bob` });
    const m = received.message;
    assert.equal(m.sender, alice.userId);
    assert.equal(m.conversationId, conversationId);
    assert.deepEqual(m.parts.map((p) => p.id), sentParts.map((p) => p.id), 'part ids kept');
    assert.deepEqual(m.parts.map((p) => [p.mimeType, p.mimeAttributes]), [
      ['application/vnd.layer.text+json', { role: 'root' }],
      ['application/json', { role: 'extra' }],
      ['location/coordinate', { role: 'extra' }],
    ]);
    assert.equal(m.parts[0].body, root);
    assert.equal(m.parts[1].body, extra);
    assert.equal(Buffer.from(m.parts[2].base64, 'base64').equals(coordinate), true, 'binary part byte-identical');

    // Client API 3.0 counts every packet: any gap would make the XDK ask for a replay.
    for (const user of [alice, bob]) {
      const bySocket = new Map();
      for (const f of user.frames().filter((x) => x.direction === 'in')) {
        if (!bySocket.has(f.socket)) bySocket.set(f.socket, []);
        bySocket.get(f.socket).push(f.packet.counter);
      }
      for (const [socket, counters] of bySocket) {
        assert.deepEqual(counters, counters.map((_, i) => i), `${user.name}'s socket ${socket} counts 0, 1, 2, …`);
      }
      const replays = user.frames().filter((f) => f.direction === 'out' && f.packet.body && f.packet.body.method === 'Event.replay');
      assert.equal(replays.length, 0, `${user.name}'s XDK never needed a replay`);
    }

    // The XDK loaded Bob's identity from its http:// url, prefixed with the API base (its
    // URL quirk, §C.9): the emulator answered that path, not a 404.
    const prefixed = `${world.server.layerUrl}/${world.server.layerUrl}/identities/${encodeURIComponent(bob.userId)}`;
    const load = await alice.waitFor('wire', (w) => w.kind === 'http' && w.url === prefixed, { what: `GET ${prefixed}` });
    assert.equal(load.method, 'GET');
    assert.equal(load.status, 200);
  });

  it('9c. the delivery receipt and then message.isRead = true take the sender to readStatus ALL', async () => {
    need(messageId, 'scenario 9b (message)');
    const delivered = await alice.waitForMessage(messageId, (m) => m.deliveryStatus === 'ALL', { what: 'deliveryStatus ALL at alice' });
    assert.equal(delivered.readStatus, 'NONE');

    const aliceSince = alice.mark();
    await bob.call('markRead', { id: messageId });
    const read = await alice.waitForMessage(messageId, (m) => m.readStatus === 'ALL', { since: aliceSince, what: 'readStatus ALL at alice' });
    assert.equal(read.deliveryStatus, 'ALL');
    assert.equal(read.recipientStatus[`layer:///identities/${bob.userId}`], 'read');
    const bobView = await bob.call('message', { id: messageId });
    assert.equal(bobView.isRead, true);
  });

  it('9d. rich content: parts over 2 KB are uploaded and fetchContent() returns the exact bytes', async () => {
    need(conversationId, 'scenario 9b (conversation)');
    const binary = crypto.randomBytes(6000);
    const text = 'x'.repeat(1000) + '\n' + 'y'.repeat(2500);
    const bobSince = bob.mark();
    const sent = await alice.call('sendMessage', {
      conversationId,
      parts: [
        { mimeType: 'application/vnd.layer.file+json;role=root', body: JSON.stringify({ name: 'blob.bin' }) },
        { mimeType: 'application/octet-stream;role=source', base64: binary.toString('base64') },
        { mimeType: 'text/plain;role=extra', body: text },
      ],
    });
    const received = await bob.waitFor('message-added', (d) => d.message.id === sent.id, { since: bobSince, what: `rich message ${sent.id} at bob` });
    assert.deepEqual(received.message.parts.map((p) => p.hasContent), [false, true, true]);
    const gotBinary = await bob.call('fetchContent', { messageId: sent.id, index: 1 });
    assert.equal(Buffer.from(gotBinary.base64, 'base64').equals(binary), true, 'binary content byte-identical');
    const gotText = await bob.call('fetchContent', { messageId: sent.id, index: 2 });
    assert.equal(Buffer.from(gotText.base64, 'base64').toString('utf8'), text);
  });

  it('9e. a second XDK device of the receiver loads the same state through queries', async () => {
    need(messageId, 'scenario 9b (message)');
    const bob2 = await world.addDevice(bob, 'bob-2');
    await bob2.signIn();
    const conversations = await bob2.call('query', { model: 'conversations' });
    assert.equal(conversations.totalSize, 1);
    assert.equal(conversations.data[0].id, conversationId);
    assert.deepEqual(conversations.data[0].metadata, { title: 'xdk' });
    const loaded = await bob2.call('query', { model: 'messages', conversationId });
    const first = loaded.data.find((m) => m.id === messageId);
    assert.ok(first, `the query returned ${messageId}`);
    assert.equal(first.isRead, true, 'read on the first device, read here');
    assert.deepEqual(first.parts.map((p) => [p.id, p.mimeType, p.mimeAttributes]),
      (await bob.call('message', { id: messageId })).parts.map((p) => [p.id, p.mimeType, p.mimeAttributes]),
      'the same parts, ids and mime attributes as delivered live');
    assert.equal(first.parts[0].body, root);
  });

  it('9f. an XDK client whose socket dropped gets the missed message through Event.replay', async () => {
    need(conversationId, 'scenario 9b (conversation)');
    const bobSince = bob.mark();
    // The XDK retries after as little as 0.1 s, less than it takes Alice to send. Bob's
    // process is frozen while his socket is dropped and Alice sends, so the message can only
    // reach him through the replay, whatever the machine's speed.
    bob.pause();
    let sent;
    try {
      await mock.disconnect(world.server, bob.userId);
      sent = await alice.call('sendMessage', {
        conversationId,
        parts: [{ mimeType: 'application/vnd.layer.text+json;role=root', body: JSON.stringify({ text: 'while you were away' }) }],
      });
    } finally {
      bob.resume();
    }
    await bob.waitFor('wire', (w) => w.kind === 'ws-close', { since: bobSince, what: 'bob\'s socket closed by the emulator' });

    const received = await bob.waitFor('message-added', (d) => d.message.id === sent.id, { since: bobSince, timeout: 25000, what: `message ${sent.id} at bob after reconnecting` });
    assert.equal(received.message.parts[0].body, JSON.stringify({ text: 'while you were away' }));
    const frames = bob.frames(bobSince);
    const replay = frames.find((f) => f.direction === 'out' && f.packet.body && f.packet.body.method === 'Event.replay');
    assert.ok(replay, 'bob\'s XDK asked for a replay');
    const replayed = frames.find((f) => f.direction === 'in' && f.socket === replay.socket && f.packet.type === 'change'
      && f.packet.body.operation === 'create' && f.packet.body.object.id === sent.id);
    assert.ok(replayed && replayed.seq > replay.seq, 'the message was replayed on the new socket');
    const counters = bob.frames(bobSince).filter((f) => f.socket === replay.socket && f.direction === 'in').map((f) => f.packet.counter);
    assert.deepEqual(counters, counters.map((_, i) => i), 'the new connection counts from 0 without gaps');
  });

  it('the SDKs logged no errors and threw none', () => world.assertNoSdkErrors());
});
