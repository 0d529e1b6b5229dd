'use strict';
// @layerhq/web-xdk 4.0.6 core (Client API 3.0) receiving what an app's server does to a
// sent message's parts through the Platform API 3.0 — adds, updates and removals show up
// as the XDK's own `messages:part-added`, `messages:change` and `messages:part-removed`
// events, with the new bodies — and a server-sent message from a named sender.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { World, need } = require('../lib/world');
const { platformRequest } = require('../lib/platform');

const V3 = { accept: 'application/vnd.layer+json; version=3.0' };

describe('@layerhq/web-xdk 4.0.6 core: message parts edited by the server', { timeout: 120000 }, () => {
  const world = new World();
  let server;
  let alice;
  let bob;
  let conversationId;
  let messageId;

  before(async () => {
    server = await world.start();
    [alice, bob] = await Promise.all([world.addUser('alice', { sdk: 'xdk' }), world.addUser('bob', { sdk: 'xdk' })]);
    await Promise.all([alice.signIn(), bob.signIn()]);
  });

  after(() => world.cleanup());

  const uuid = (id) => id.slice(id.lastIndexOf('/') + 1);
  const partsPath = () => `/conversations/${uuid(conversationId)}/messages/${uuid(messageId)}/parts`;

  it('X1. a message the server sends under a name reaches the XDK client', async () => {
    const since = bob.mark();
    const created = await platformRequest(server, 'POST', '/conversations', { participants: [alice.userId, bob.userId] }, V3);
    assert.equal(created.status, 201, created.text);
    conversationId = created.json.id;
    await bob.waitFor('conversation-added', (d) => d.conversation.id === conversationId, { since });
    const sent = await platformRequest(server, 'POST', `/conversations/${uuid(conversationId)}/messages`, {
      sender: { name: 'Status Bot' },
      parts: [{ mime_type: 'application/vnd.layer.text+json;role=root', body: JSON.stringify({ text: 'building…' }) }],
    }, V3);
    assert.equal(sent.status, 201, sent.text);
    messageId = sent.json.id;
    const added = await bob.waitFor('message-added', (d) => d.message.id === messageId, { since, what: 'the bot message at bob' });
    assert.equal(added.message.senderDisplayName, 'Status Bot');
    assert.equal(JSON.parse(added.message.parts[0].body).text, 'building…');
  });

  it('X2. a part the server adds raises messages:part-added and messages:change with its body', async () => {
    need(messageId, 'the message of X1');
    const since = bob.mark();
    const body = JSON.stringify({ progress: 50 });
    const res = await platformRequest(server, 'POST', partsPath(), { mime_type: 'application/json;role=extra', body }, V3);
    assert.equal(res.status, 201, res.text);
    const partId = res.json.id;
    const added = await bob.waitFor('part-added', (d) => d.partId === partId, { since, what: 'messages:part-added at bob' });
    assert.equal(added.messageId, messageId);
    assert.equal(added.body, body);
    await bob.waitFor('message-changed', (d) => d.message.id === messageId && d.properties.includes('parts')
      && d.message.parts.some((p) => p.body === body), { since, what: 'messages:change (parts) at bob' });
  });

  it('X3. a part the server updates raises messages:change with the new body', async () => {
    need(messageId, 'the message of X1');
    const since = bob.mark();
    const list = await platformRequest(server, 'GET', partsPath(), undefined, V3);
    const extra = list.json.find((p) => p.mime_type.startsWith('application/json'));
    const body = JSON.stringify({ progress: 100 });
    const res = await platformRequest(server, 'PUT', `${partsPath()}/${uuid(extra.id)}`, { mime_type: extra.mime_type, body }, V3);
    assert.equal(res.status, 204, res.text);
    assert.equal(res.text, '');
    await bob.waitFor('message-changed', (d) => d.message.id === messageId && d.properties.includes('parts.body')
      && d.message.parts.some((p) => p.body === body), { since, what: 'messages:change (parts.body) at bob' });
  });

  it('X4. a part the server removes raises messages:part-removed', async () => {
    need(messageId, 'the message of X1');
    const since = bob.mark();
    const list = await platformRequest(server, 'GET', partsPath(), undefined, V3);
    const extra = list.json.find((p) => p.mime_type.startsWith('application/json'));
    const res = await platformRequest(server, 'DELETE', `${partsPath()}/${uuid(extra.id)}`, undefined, V3);
    assert.equal(res.status, 204, res.text);
    const removed = await bob.waitFor('part-removed', (d) => d.partId === extra.id, { since, what: 'messages:part-removed at bob' });
    assert.equal(removed.messageId, messageId);
  });

  it('the SDKs logged no errors and threw none', () => world.assertNoSdkErrors());
});
