'use strict';
// @layerhq/web-xdk 4.0.6 core: channels (Layer's named rooms, beta). Alice creates one with
// client.createChannel (Channel.create), sends into it, and Bob — a member — receives the
// message as a ChannelMessage without recipient status; queries load channels, messages and
// members over REST; Carol finds the taken name, joins with channel.join() and is removed
// with channel.removeMembers(), all through the XDK's own channel model.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { World, need } = require('../lib/world');
const { mock } = require('../lib/layer');

describe('@layerhq/web-xdk 4.0.6 core: channels', { timeout: 120000 }, () => {
  const world = new World();
  let alice;
  let bob;
  let carol;
  let channelId;
  let messageId;

  before(async () => {
    await world.start();
    [alice, bob, carol] = await Promise.all([
      world.addUser('alice', { sdk: 'xdk' }),
      world.addUser('bob', { sdk: 'xdk', login: 'session' }),
      world.addUser('carol', { sdk: 'xdk' }),
    ]);
    await Promise.all([alice.signIn(), bob.signIn(), carol.signIn()]);
  });

  after(() => world.cleanup());

  const text = (t) => ({ mimeType: 'application/vnd.layer.text+json;role=root', body: JSON.stringify({ text: t }) });

  it('10a. createChannel sends Channel.create; the member gets the channel with their membership', async () => {
    const bobSince = bob.mark();
    const aliceSince = alice.mark();
    const created = await alice.call('createChannel', { name: 'general', members: [bob.userId], metadata: { topic: 'all hands' } });
    assert.equal(created.result, 'Created');
    channelId = created.channel.id;
    assert.match(channelId, /^layer:\/\/\/channels\/[0-9a-f-]{36}$/);
    assert.equal(created.channel.isCurrentParticipant, true);
    assert.equal(created.channel.membershipId, `${channelId}/members/${alice.userId}`);

    const request = alice.frames(aliceSince).find((f) => f.direction === 'out' && f.packet.body && f.packet.body.method === 'Channel.create');
    assert.ok(request, 'alice\'s XDK sent Channel.create');
    assert.equal(request.packet.body.data.name, 'general');
    assert.deepEqual(request.packet.body.data.members.sort(), [`layer:///identities/${alice.userId}`, `layer:///identities/${bob.userId}`].sort());

    const added = await bob.waitFor('channel-added', (d) => d.channel.id === channelId, { since: bobSince, what: `channel ${channelId} at bob` });
    assert.equal(added.channel.name, 'general');
    assert.deepEqual(added.channel.metadata, { topic: 'all hands' });
    assert.equal(added.channel.isCurrentParticipant, true);
    assert.equal(added.channel.membershipId, `${channelId}/members/${bob.userId}`);
  });

  it('10b. a channel message reaches the member as a ChannelMessage without recipient status or push', async () => {
    need(channelId, 'scenario 10a (channel)');
    const bobSince = bob.mark();
    const sent = await alice.call('sendChannelMessage', { channelId, parts: [text('hello channel \u2713')] });
    messageId = sent.id;
    const received = await bob.waitFor('message-added', (d) => d.message.id === messageId, { since: bobSince, what: `message ${messageId} at bob` });
    const m = received.message;
    assert.equal(m.conversationId, channelId, 'the XDK filed it under the channel');
    assert.equal(m.sender, alice.userId);
    assert.equal(m.parts[0].body, JSON.stringify({ text: 'hello channel \u2713' }));
    assert.deepEqual(m.recipientStatus, {}, 'no recipient status');

    const create = bob.frames(bobSince).find((f) => f.direction === 'in' && f.packet.type === 'change'
      && f.packet.body.operation === 'create' && f.packet.body.object.id === messageId);
    assert.ok(create, 'bob got the message\'s create');
    assert.equal(create.packet.body.data.channel.id, channelId);
    assert.equal('recipient_status' in create.packet.body.data, false);
    assert.equal('conversation' in create.packet.body.data, false);
    assert.deepEqual(await mock.notifications(world.server), [], 'channel messages push nothing');
  });

  it('10c. the XDK\'s queries load the channels, the channel\'s messages and its members', async () => {
    need(messageId, 'scenario 10b (message)');
    const channels = await bob.call('channelQuery', { model: 'channels' });
    assert.equal(channels.totalSize, 1);
    assert.equal(channels.data[0].id, channelId);
    const messages = await bob.call('channelQuery', { model: 'messages', channelId });
    assert.deepEqual(messages.data.map((m) => m.id), [messageId]);
    assert.deepEqual(messages.data[0].recipientStatus, {});
    const members = await bob.call('channelQuery', { model: 'members', channelId });
    assert.equal(members.totalSize, 2);
    assert.deepEqual(members.data.map((m) => m.userId).sort(), [alice.userId, bob.userId].sort());
    for (const member of members.data) {
      assert.equal(member.channelId, channelId);
      assert.equal(member.id, `${channelId}/members/${member.userId}`);
    }
  });

  it('10d. a taken name is found, not duplicated; channel.join() then makes a member', async () => {
    need(messageId, 'scenario 10b (message)');
    const found = await carol.call('createChannel', { name: 'general', members: [] });
    assert.equal(found.result, 'Found', 'the conflict carried the existing channel');
    assert.equal(found.channel.id, channelId, 'the XDK adopted the existing channel\'s id');
    assert.equal(found.channel.isCurrentParticipant, false, 'asking for the name does not make a member');

    const aliceSince = alice.mark();
    const carolSince = carol.mark();
    await carol.call('joinChannel', { id: channelId });
    const join = await carol.waitFor('wire', (w) => w.kind === 'http' && w.method === 'PUT' && w.url.endsWith(`/members/${carol.userId}`), { since: carolSince, what: 'carol\'s PUT members' });
    assert.equal(join.status, 204);
    // The emulator pushes the channel's create to the one joining; the XDK refreshes its copy.
    await carol.waitFor('wire', (w) => {
      if (w.kind !== 'ws-in') return false;
      const packet = JSON.parse(w.frame);
      return packet.type === 'change' && packet.body.operation === 'create' && packet.body.object.id === channelId;
    }, { since: carolSince, what: 'the channel\'s create at carol' });
    const joined = await carol.call('channel', { id: channelId });
    assert.equal(joined.isCurrentParticipant, true, 'carol is a member after joining');
    assert.equal(joined.membershipId, `${channelId}/members/${carol.userId}`);
    const added = await alice.waitFor('member-added', (d) => d.member.userId === carol.userId, { since: aliceSince, what: 'carol\'s membership at alice' });
    assert.equal(added.member.channelId, channelId);

    const bobSince = bob.mark();
    const sent = await carol.call('sendChannelMessage', { channelId, parts: [text('hi, I am new')] });
    await bob.waitFor('message-added', (d) => d.message.id === sent.id, { since: bobSince, what: 'carol\'s message at bob' });
  });

  it('10e. removeMembers() takes the channel off the removed member\'s client', async () => {
    need(messageId, 'scenario 10b (message)');
    const carolSince = carol.mark();
    await alice.call('removeChannelMembers', { id: channelId, userIds: [carol.userId] });
    await carol.waitFor('channel-removed', (d) => d.id === channelId, { since: carolSince, what: 'the channel gone at carol' });
    const members = await alice.call('channelQuery', { model: 'members', channelId });
    assert.deepEqual(members.data.map((m) => m.userId).sort(), [alice.userId, bob.userId].sort());
  });

  it('the SDKs logged no errors but the conflict they were sent, and threw none', () => {
    // The XDK's SyncManager logs every refused request before its handler runs, the
    // conflict of 10d included (which Channel._createResultConflict then resolves).
    const rejected = /Sync Manager Server Rejects Request/;
    for (const user of [alice, bob, carol]) {
      assert.equal(user.sdkErrors.filter((l) => rejected.test(l)).length, user === carol ? 1 : 0, `${user.name}: ${user.sdkErrors.join('\n')}`);
    }
    world.assertNoSdkErrors([rejected]);
  });
});
