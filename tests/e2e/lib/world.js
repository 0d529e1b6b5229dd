'use strict';
// What most scenarios start from: one running layer-idp with its emulator, and users who
// signed up there and each run one real SDK client. `cleanup()` stops everything, users first.

const assert = require('node:assert/strict');
const { startServer } = require('./server');
const { SimulatedUser } = require('./user');
const idp = require('./idp');

class World {
  constructor() {
    this.server = null;
    this.users = [];
    this.extraServers = [];
  }

  async start(options) {
    this.server = await startServer(options);
    return this.server;
  }

  async startExtraServer(options) {
    const server = await startServer(options);
    this.extraServers.push(server);
    return server;
  }

  /** Signs a user up at layer-idp and starts its SDK process (not yet connected). */
  async addUser(name, { sdk = 'websdk', login = 'authenticate' } = {}) {
    const account = await idp.signUp(this.server.idpUrl, { name });
    const user = await SimulatedUser.start({ name, server: this.server, account, sdk, login });
    this.users.push(user);
    return user;
  }

  /** Another device of an existing user: its own process, its own login and session. */
  async addDevice(user, name, { login = user.login } = {}) {
    const device = await SimulatedUser.start({ name, server: this.server, account: user.account, sdk: user.sdk, login });
    this.users.push(device);
    return device;
  }

  /**
   * Fails if any SDK logged an error, or threw one that escaped it, other than those the
   * scenario provoked on purpose (`allowed`: regular expressions). A malformed packet or
   * response often shows only there: the SDK logs it and carries on.
   */
  assertNoSdkErrors(allowed = []) {
    const problems = [];
    for (const user of this.users) {
      for (const e of user.events.filter((x) => x.name === 'agent-error')) {
        problems.push(`${user.name}: ${e.data.where}: ${e.data.error}`);
      }
      for (const line of user.sdkErrors) {
        if (allowed.some((re) => re.test(line))) continue;
        problems.push(`${user.name}: ${line}`);
      }
    }
    assert.deepEqual(problems, [], `the SDKs reported errors:\n${problems.join('\n')}`);
  }

  async cleanup() {
    await Promise.allSettled(this.users.map((u) => u.stop()));
    await Promise.allSettled([this.server, ...this.extraServers].filter(Boolean).map((s) => s.stop()));
  }
}

/**
 * Alice and Bob signed in with the given SDK, and a conversation between them that both
 * clients hold: the starting point of the scenarios that are about something else.
 */
async function pairWithConversation(world, { sdk = 'websdk' } = {}) {
  const [alice, bob] = await Promise.all([world.addUser('alice', { sdk }), world.addUser('bob', { sdk })]);
  await Promise.all([alice.signIn(), bob.signIn()]);
  const bobSince = bob.mark();
  const created = await alice.call('createConversation', { participants: [bob.userId] });
  const conversationId = created.conversation.id;
  await bob.waitFor('conversation-added', (d) => d.conversation.id === conversationId, { since: bobSince, what: `conversation ${conversationId} at bob` });
  return { alice, bob, conversationId };
}

/** Guards a scenario that builds on an earlier one, so its failure names the real cause. */
function need(value, what) {
  if (value === undefined || value === null) {
    throw new Error(`prerequisite missing: ${what} (an earlier scenario in this file failed)`);
  }
  return value;
}

/** The claims of the token a user answered its n-th challenge with, checked as layer-idp's. */
function assertIssuedByIdp(server, user, challengeIndex = 0) {
  const record = user.challenges[challengeIndex];
  assert.ok(record && record.token, `${user.name} answered challenge #${challengeIndex + 1} with a token`);
  const { header, claims } = idp.decodeJwt(record.token);
  const ids = server.developmentIds();
  assert.equal(header.alg, 'RS256');
  assert.equal(header.kid, ids.key_id, 'token signed with the server\'s key');
  assert.equal(claims.iss, ids.provider_id, 'token issued by the server\'s provider');
  assert.equal(claims.prn, user.userId, 'token names the signed-up user');
  assert.equal(claims.nce, record.nonce, 'token bound to the challenge\'s nonce');
  return { header, claims };
}

module.exports = { World, need, assertIssuedByIdp, pairWithConversation };
