'use strict';
// layer-websdk 3.4.18: long lists paged the way infinite scrolling does, conversations
// sorted by their last message, push notifications for the recipients, and presence.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { World, pairWithConversation } = require('../lib/world');
const { mock } = require('../lib/layer');

describe('layer-websdk 3.4.18: paging, sorting, notifications, presence', { timeout: 120000 }, () => {
  const world = new World();
  let alice;
  let bob;
  let conversationId;

  before(async () => {
    await world.start();
    ({ alice, bob, conversationId } = await pairWithConversation(world));
  });

  after(() => world.cleanup());

  it('20. a long conversation is paged with from_id, newest first, without gaps or repeats', async () => {
    const sent = [];
    for (let i = 1; i <= 7; i++) {
      sent.push(await alice.call('sendMessage', { conversationId, parts: [{ mimeType: 'text/plain', body: `message ${i}` }] }));
    }
    const reader = await world.addDevice(bob, 'bob-2');
    await reader.signIn();
    const since = reader.mark();
    const result = await reader.call('query', { model: 'messages', conversationId, pageSize: 3, pages: 3 });
    assert.equal(result.totalSize, 7, 'Layer-Count');
    assert.deepEqual(result.sizes, [3, 6, 7], 'three pages of 3, 3 and 1');
    assert.equal(result.pagedToEnd, true);
    assert.deepEqual(result.data.map((m) => m.id), sent.map((m) => m.id).reverse(), 'every message once, newest first');
    assert.deepEqual(result.data.map((m) => m.parts[0].body), sent.map((_, i) => `message ${i + 1}`).reverse());
    const pageRequests = reader.http(since).filter((h) => h.method === 'GET' && h.url.includes('/messages?'));
    assert.equal(pageRequests.length, 3, 'one request per page');
    assert.ok(pageRequests.slice(1).every((h) => h.url.includes('from_id=')), 'later pages continue from the last id');
  });

  it('21. conversations sorted by last message put the most recently active first', async () => {
    const carol = await world.addUser('carol');
    await carol.signIn();
    const older = (await carol.call('createConversation', { participants: [alice.userId], metadata: { name: 'older' } })).conversation.id;
    const newer = (await carol.call('createConversation', { participants: [alice.userId], metadata: { name: 'newer' } })).conversation.id;
    await carol.call('sendMessage', { conversationId: newer, parts: [{ mimeType: 'text/plain', body: 'in the newer one' }] });
    await carol.call('sendMessage', { conversationId: older, parts: [{ mimeType: 'text/plain', body: 'the older one wakes up' }] });

    const byCreation = await carol.call('query', { model: 'conversations', sortBy: [{ createdAt: 'desc' }] });
    assert.deepEqual(byCreation.data.map((c) => c.id), [newer, older], 'created_at: newest conversation first');
    const byActivity = await carol.call('query', { model: 'conversations', sortBy: [{ 'lastMessage.sentAt': 'desc' }] });
    assert.deepEqual(byActivity.data.map((c) => c.id), [older, newer], 'last_message: most recent message first');
    const requests = carol.http().filter((h) => h.method === 'GET' && h.url.includes('/conversations?'));
    assert.ok(requests.some((h) => h.url.includes('sort_by=last_message')), 'the SDK asked the server to sort by last message');
  });

  it('22. a message sent with a notification is pushed to the recipients, not the sender', async () => {
    const notification = { title: 'New message', text: 'Alice: are you there?', sound: 'chime.aiff' };
    const sent = await alice.call('sendMessage', { conversationId, parts: [{ mimeType: 'text/plain', body: 'are you there?' }], notification });
    const create = alice.frames().find((f) => f.direction === 'out' && f.packet.body && f.packet.body.method === 'Message.create'
      && f.packet.body.data.id === sent.id);
    assert.deepEqual(create.packet.body.data.notification, notification, 'the SDK sent the notification with the message');

    const pushes = (await mock.notifications(world.server)).filter((n) => n.message === sent.id);
    assert.equal(pushes.length, 1, `one push for the message: ${JSON.stringify(pushes)}`);
    assert.deepEqual(pushes[0].recipients, [`layer:///identities/${bob.userId}`], 'to bob only');
    assert.equal(pushes[0].text, notification.text);
    assert.equal(pushes[0].sound, notification.sound);
  });

  it('23. a participant\'s presence is synced when the client learns of them', async () => {
    const view = await bob.call('identity', { userId: alice.userId });
    if (view.status !== 'available') {
      await bob.waitFor('identity-changed', (d) => d.userId === alice.userId && d.status === 'available', { what: 'alice available at bob' });
    }
    const presenceSync = bob.frames().find((f) => f.direction === 'out' && f.packet.body && f.packet.body.method === 'Presence.sync');
    assert.ok(presenceSync, 'bob\'s SDK asked for presence');
  });

  it('25. a user who never connected finds the conversation and messages waiting at first login', async () => {
    const dave = await world.addUser('dave');
    // Dave has an account at layer-idp but Layer has never seen him.
    const created = await alice.call('createConversation', { participants: [dave.userId], metadata: { name: 'for dave' } });
    const first = await alice.call('sendMessage', { conversationId: created.conversation.id, parts: [{ mimeType: 'text/plain', body: 'hi dave, when you get this' }] });
    const aliceView = await alice.call('message', { id: first.id });
    assert.equal(aliceView.recipientStatus[`layer:///identities/${dave.userId}`], 'sent', 'not delivered while dave has never connected');

    await dave.signIn();
    const conversations = await dave.call('query', { model: 'conversations' });
    assert.deepEqual(conversations.data.map((c) => [c.id, c.unreadCount]), [[created.conversation.id, 1]]);
    assert.deepEqual(conversations.data[0].participantNames, [alice.account.display_name, dave.account.display_name].sort(),
      'his name came from his own identity token, not left empty from before he signed in');
    const messages = await dave.call('query', { model: 'messages', conversationId: created.conversation.id });
    assert.deepEqual(messages.data.map((m) => [m.id, m.parts[0].body, m.isRead]), [[first.id, 'hi dave, when you get this', false]]);
    // Loading it is delivering it: Dave's SDK sends the receipt, Alice sees it.
    await alice.waitForMessage(first.id, (m) => m.deliveryStatus === 'ALL', { what: 'delivered once dave loaded it' });
  });

  it('26. both users sending at once get distinct positions and one order everywhere', async () => {
    const conversation = (await alice.call('createConversation', { participants: [bob.userId], metadata: { name: 'busy' } })).conversation.id;
    await bob.waitFor('conversation-added', (d) => d.conversation.id === conversation);
    const sends = [];
    for (let i = 0; i < 5; i++) {
      sends.push(alice.call('sendMessage', { conversationId: conversation, parts: [{ mimeType: 'text/plain', body: `alice ${i}` }] }));
      sends.push(bob.call('sendMessage', { conversationId: conversation, parts: [{ mimeType: 'text/plain', body: `bob ${i}` }] }));
    }
    const sent = await Promise.all(sends);
    const positions = sent.map((m) => m.position);
    assert.equal(new Set(positions).size, 10, `ten distinct positions: ${positions}`);

    const [atAlice, atBob] = await Promise.all([
      alice.call('query', { model: 'messages', conversationId: conversation }),
      bob.call('query', { model: 'messages', conversationId: conversation }),
    ]);
    assert.equal(atAlice.totalSize, 10);
    assert.deepEqual(atBob.data.map((m) => m.id), atAlice.data.map((m) => m.id), 'the same order for both');
    const queried = atAlice.data.map((m) => m.position);
    assert.deepEqual(queried, [...queried].sort((a, b) => b - a), 'newest (highest position) first');
    for (const who of ['alice', 'bob']) {
      const mine = atAlice.data.filter((m) => m.parts[0].body.startsWith(who)).map((m) => m.parts[0].body).reverse();
      assert.deepEqual(mine, [0, 1, 2, 3, 4].map((i) => `${who} ${i}`), `${who}'s messages keep the order they were sent in`);
    }
  });

  it('24. a presence change is pushed to the users who see that identity', async () => {
    const since = bob.mark();
    await alice.call('setStatus', { status: 'busy' });
    await bob.waitFor('identity-changed', (d) => d.userId === alice.userId && d.status === 'busy', { since, timeout: 5000, what: 'alice busy at bob' });

    // Her last socket closing takes her offline; her SDK reconnecting (status auto) brings
    // her back as available.
    const dropped = bob.mark();
    await mock.disconnect(world.server, alice.userId);
    await bob.waitFor('identity-changed', (d) => d.userId === alice.userId && d.status === 'offline', { since: dropped, what: 'alice offline at bob once her socket closed' });
    await bob.waitFor('identity-changed', (d) => d.userId === alice.userId && d.status === 'available',
      { since: dropped, timeout: 25000, what: 'alice available again at bob after her SDK reconnected' });
    const statuses = bob.events.filter((e) => e.seq >= dropped && e.name === 'identity-changed' && e.data.userId === alice.userId)
      .map((e) => e.data.status);
    assert.equal(statuses[0], 'offline', `offline first: ${statuses}`);
    assert.equal(statuses[statuses.length - 1], 'available', `available last: ${statuses}`);
  });

  it('the SDKs logged no errors and threw none', () => world.assertNoSdkErrors());
});
