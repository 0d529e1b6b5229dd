'use strict';
// layer-websdk 3.4.18: a receiver whose socket dropped gets what it missed through
// Event.replay when the SDK reconnects on its own — and, when the emulator no longer keeps
// all of it, a failed replay that the client survives.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { World, pairWithConversation } = require('../lib/world');
const { mock } = require('../lib/layer');

describe('layer-websdk 3.4.18: reconnect and Event.replay', { timeout: 90000 }, () => {
  const world = new World();
  let alice;
  let bob;
  let conversationId;

  before(async () => {
    await world.start();
    ({ alice, bob, conversationId } = await pairWithConversation(world));
  });

  after(() => world.cleanup());

  it('6. a message sent while the receiver was disconnected arrives through Event.replay after it reconnects', async () => {
    const bobSince = bob.mark();
    const socketsBefore = new Set(bob.wire().filter((w) => w.kind === 'ws-open').map((w) => w.socket));

    // Bob's process is frozen while his socket is dropped and Alice sends (as a sleeping
    // laptop would be), so the message can only reach him through the replay, however slow
    // the machine is compared to the SDK's reconnect backoff.
    bob.pause();
    let sent;
    try {
      await mock.disconnect(world.server, bob.userId);
      sent = await alice.call('sendMessage', {
        conversationId,
        parts: [{ mimeType: 'text/plain', body: 'sent while bob was away' }],
      });
    } finally {
      bob.resume();
    }
    await bob.waitFor('wire', (w) => w.kind === 'ws-close', { since: bobSince, what: 'bob\'s socket to be closed by the emulator' });

    const received = await bob.waitFor('message-added', (d) => d.message.id === sent.id, { since: bobSince, timeout: 25000, what: `message ${sent.id} at bob after reconnecting` });
    assert.deepEqual(received.message.parts.map((p) => [p.mimeType, p.body]), [['text/plain', 'sent while bob was away']]);
    assert.equal(received.message.sender, alice.userId);

    // The session survived the drop: the SDK checked it, then reconnected without a challenge.
    const validate = bob.http(bobSince).find((h) => h.url.includes('action=validateConnectionForWebsocket'));
    assert.ok(validate, 'bob\'s SDK validated its session before reconnecting');
    assert.equal(validate.status, 200, 'the dropped session is still valid');
    bob.assertNo('challenge', null, { since: bobSince, what: 'challenge after a plain disconnect' });

    // On the new socket: the SDK asked for a replay from its last timestamp, and the message
    // came as a replayed change before the replay's response.
    const frames = bob.frames(bobSince).filter((f) => !socketsBefore.has(f.socket));
    const replay = frames.find((f) => f.direction === 'out' && f.packet.type === 'request' && f.packet.body.method === 'Event.replay');
    assert.ok(replay, `bob's SDK sent Event.replay; frames on the new socket: ${JSON.stringify(frames.map((f) => f.packet)).slice(0, 1500)}`);
    assert.match(replay.packet.body.data.from_timestamp, /^\d{4}-\d\d-\d\dT/);
    const requestId = replay.packet.body.request_id;
    await bob.waitFor('wire', (w) => w.kind === 'ws-in' && w.socket === replay.socket && JSON.parse(w.frame).type === 'response'
      && JSON.parse(w.frame).body.request_id === requestId, { since: bobSince, what: `the response to Event.replay ${requestId}` });
    const response = bob.frames(bobSince).find((f) => f.direction === 'in' && f.packet.type === 'response' && f.packet.body.request_id === requestId);
    assert.equal(response.packet.body.success, true);
    const replayed = frames.find((f) => f.direction === 'in' && f.packet.type === 'change' && f.packet.body.operation === 'create'
      && f.packet.body.object && f.packet.body.object.id === sent.id);
    assert.ok(replayed, 'the message came as a change packet on the new socket');
    assert.ok(replayed.seq < response.seq, 'the missed change was replayed before the Event.replay response');

    // Counters on the new connection start at 0 and have no gaps.
    const counters = bob.frames(bobSince).filter((f) => f.socket === replay.socket && f.direction === 'in').map((f) => f.packet.counter);
    assert.deepEqual(counters, counters.map((_, i) => i), 'the new connection numbers its packets 0, 1, 2, …');

    // Exactly one copy at Bob, and it is receipted like any other: Alice sees it delivered.
    const copies = bob.events.filter((e) => e.seq >= bobSince && e.name === 'message-added' && e.data.message.id === sent.id);
    assert.equal(copies.length, 1, 'the message was added once');
    await alice.waitForMessage(sent.id, (m) => m.deliveryStatus === 'ALL', { what: 'deliveryStatus ALL at alice for the replayed message' });

    // The emulator's own record agrees that Bob asked for a replay.
    const log = await mock.requests(world.server);
    const text = JSON.stringify(log);
    assert.ok(text.includes('Event.replay'), 'GET /_mock/requests records the Event.replay request');
  });

  it('the SDKs logged no errors and threw none', () => world.assertNoSdkErrors());
});

describe('layer-websdk 3.4.18: a replay that reaches past what the emulator keeps', { timeout: 90000 }, () => {
  const world = new World();
  let alice;
  let bob;
  let conversationId;

  before(async () => {
    // Six changes per user: one message is three (create, conversation update, receipt).
    await world.start({ env: { LAYER_IDP_MOCK_LAYER__REPLAY_ENTRIES_PER_USER: '6' } });
    ({ alice, bob, conversationId } = await pairWithConversation(world));
  });

  after(() => world.cleanup());

  it('6b. the replay fails rather than answer in part; live changes keep coming and queries load what was missed', async () => {
    const bobSince = bob.mark();
    const socketsBefore = new Set(bob.wire().filter((w) => w.kind === 'ws-open').map((w) => w.socket));
    bob.pause();
    const missed = [];
    try {
      await mock.disconnect(world.server, bob.userId);
      for (let i = 0; i < 5; i++) {
        missed.push(await alice.call('sendMessage', { conversationId, parts: [{ mimeType: 'text/plain', body: `missed ${i}` }] }));
      }
    } finally {
      bob.resume();
    }
    const replay = await bob.waitFor('wire', (w) => w.kind === 'ws-out' && !socketsBefore.has(w.socket)
      && JSON.parse(w.frame).body.method === 'Event.replay', { since: bobSince, timeout: 25000, what: 'bob\'s Event.replay on a new socket' });
    const requestId = JSON.parse(replay.frame).body.request_id;
    const response = await bob.waitFor('wire', (w) => w.kind === 'ws-in' && w.socket === replay.socket
      && JSON.parse(w.frame).type === 'response' && JSON.parse(w.frame).body.request_id === requestId,
    { since: bobSince, what: 'the response to Event.replay' });
    const body = JSON.parse(response.frame).body;
    assert.equal(body.success, false, 'not a partial history presented as complete');
    assert.equal(body.data.id, 'invalid_property');
    assert.equal(body.data.data.property, 'from_timestamp');
    const replayedCreates = bob.frames(bobSince).filter((f) => f.socket === replay.socket && f.direction === 'in'
      && f.packet.type === 'change' && f.packet.body.operation === 'create');
    assert.deepEqual(replayedCreates, [], 'nothing was replayed');

    // The socket stays: the next message arrives live.
    const live = await alice.call('sendMessage', { conversationId, parts: [{ mimeType: 'text/plain', body: 'after the failed replay' }] });
    await bob.waitFor('message-added', (d) => d.message.id === live.id, { since: bobSince, what: 'a live message after the failed replay' });
    // And what the replay could not give, a query loads.
    const loaded = await bob.call('query', { model: 'messages', conversationId });
    const ids = loaded.data.map((m) => m.id);
    for (const m of [...missed, live]) assert.ok(ids.includes(m.id), `${m.id} in bob's query`);
  });

  it('the SDKs logged no errors and threw none', () => world.assertNoSdkErrors());
});
