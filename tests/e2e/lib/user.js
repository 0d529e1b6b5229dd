'use strict';
// The test's side of a simulated user: forks lib/agent.js (one SDK client per process),
// sends it commands, records everything it reports, and waits on that record with
// timeouts that fail with a readable account of what did happen.
//
// Every identity token a user presents comes from a real login at layer-idp: on each
// `challenge` the user logs in with its account (POST /authenticate with the nonce, or
// POST /sessions once and then POST /identity_tokens per nonce) and answers with the token.
// A scenario may replace `tokenFor` to present a token it altered on purpose.

const path = require('node:path');
const readline = require('node:readline');
const { fork } = require('node:child_process');
const idp = require('./idp');

const AGENT = path.join(__dirname, 'agent.js');
const DEFAULT_TIMEOUT_MS = Number(process.env.E2E_WAIT_MS || 15000);

let counter = 0;

// Agents end with their IPC channel, but one frozen by pause() cannot notice: whatever
// happens to the test process, take every agent it started along.
const agents = new Set();
process.once('exit', () => {
  for (const child of agents) {
    try { child.kill('SIGKILL'); } catch (_) { /* already gone */ }
  }
});

function short(value, max = 300) {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

class SimulatedUser {
  /**
   * @param {object} options
   * @param {string} options.name        label in failure messages ("alice")
   * @param {object} options.server      from lib/server.js
   * @param {object} options.account     {id, email, password, display_name} from idp.signUp
   * @param {'websdk'|'xdk'} [options.sdk]
   * @param {'authenticate'|'session'} [options.login] how tokens are obtained from layer-idp
   * @param {string} [options.appId]  the Layer app this client is built for (default: the
   *   server's first); it is also the app_id its logins at layer-idp name
   */
  constructor({ name, server, account, sdk = 'websdk', login = 'authenticate', appId }) {
    this.name = name;
    this.server = server;
    this.appId = appId || null;
    this.account = account;
    this.sdk = sdk;
    this.login = login;
    this.events = [];
    this.output = [];
    this.sdkErrors = [];
    this.challenges = [];
    this.exited = null;
    this._pending = new Map();
    this._waiters = new Set();
    this._idpSession = null;
    this.tokenFor = (nonce) => this.realLogin(nonce);
  }

  get userId() {
    return this.account.id;
  }

  static async start(options) {
    const user = new SimulatedUser(options);
    await user._spawn();
    await user.call('init', {
      appId: user.appId || user.server.appId,
      url: user.server.layerUrl,
      websocketUrl: user.server.layerWsUrl,
      logLevel: Number(process.env.E2E_SDK_LOG_LEVEL || 1),
    });
    return user;
  }

  _spawn() {
    this.child = fork(AGENT, [], {
      env: Object.assign({}, process.env, { E2E_SDK: this.sdk }),
      // Node warns about xhr2's use of `new Buffer`; that is the dependency's business.
      execArgv: ['--no-deprecation'],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const keep = (stream) => (line) => {
      if (!line.trim()) return;
      this.output.push(`[${stream}] ${line}`);
      if (this.output.length > 400) this.output.shift();
      if (/Layer ERROR/.test(line)) this.sdkErrors.push(line);
    };
    readline.createInterface({ input: this.child.stdout }).on('line', keep('stdout'));
    readline.createInterface({ input: this.child.stderr }).on('line', keep('stderr'));
    this.child.on('message', (msg) => this._onMessage(msg));
    agents.add(this.child);
    this.child.on('exit', (code, signal) => {
      agents.delete(this.child);
      this.exited = { code, signal };
      const err = new Error(`${this.name}'s agent exited (code ${code}, signal ${signal})\n${this.diagnostics()}`);
      for (const { reject } of this._pending.values()) reject(err);
      this._pending.clear();
      for (const waiter of this._waiters) waiter.fail(err);
    });
    return this.waitFor('agent-ready', null, { timeout: 20000, what: 'the agent to load the SDK' });
  }

  _onMessage(msg) {
    if (msg && msg.id !== undefined && this._pending.has(msg.id)) {
      const { resolve, reject, cmd } = this._pending.get(msg.id);
      this._pending.delete(msg.id);
      if (msg.ok) resolve(msg.result);
      else reject(new Error(`${this.name}: command ${cmd} failed: ${msg.error}`));
      return;
    }
    if (!msg || !msg.event) return;
    this._record(msg.event, msg.data);
    if (msg.event === 'challenge') this._onChallenge(msg.data.nonce);
  }

  async _onChallenge(nonce) {
    const record = { nonce, token: null, error: null, at: Date.now() };
    this.challenges.push(record);
    try {
      record.token = await this.tokenFor(nonce);
      await this.call('answer', { token: record.token });
    } catch (err) {
      record.error = err;
      this._record('answer-error', { nonce, error: String(err && err.message) });
    }
  }

  _record(name, data) {
    const entry = { seq: this.events.length, name, data, at: Date.now() };
    this.events.push(entry);
    for (const waiter of [...this._waiters]) waiter.check(entry);
  }

  /** A real login at layer-idp for this nonce, the way this user's app does it. */
  async realLogin(nonce) {
    const base = this.server.idpUrl;
    if (this.login === 'session') {
      if (!this._idpSession) {
        this._idpSession = await idp.openSession(base, this.account);
      }
      return idp.identityToken(base, this._idpSession.session_token, nonce, this.appId);
    }
    return idp.authenticate(base, { email: this.account.email, password: this.account.password, nonce, appId: this.appId });
  }

  call(cmd, args = {}, { timeout = DEFAULT_TIMEOUT_MS } = {}) {
    if (this.exited) return Promise.reject(new Error(`${this.name}'s agent has exited; cannot ${cmd}`));
    const id = ++counter;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new Error(`${this.name}: command ${cmd}(${short(args, 200)}) got no answer within ${timeout} ms\n${this.diagnostics()}`));
      }, timeout);
      this._pending.set(id, {
        cmd,
        resolve: (v) => { clearTimeout(timer); resolve(v); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      this.child.send({ id, cmd, args });
    });
  }

  /** Index of the next event; pass it as `since` to ignore what happened before. */
  mark() {
    return this.events.length;
  }

  /**
   * Resolves with the data of the first event named `name` (at or after `since`) for which
   * `predicate(data)` is true; rejects after `timeout` ms with what was seen instead.
   */
  waitFor(name, predicate, { timeout = DEFAULT_TIMEOUT_MS, since = 0, what } = {}) {
    const description = what || `event ${name}${predicate ? ` matching ${predicate.toString().replace(/\s+/g, ' ')}` : ''}`;
    return this._waitUntil((e) => e.seq >= since && e.name === name && (!predicate || predicate(e.data)), description, timeout);
  }

  /** Like waitFor, for the first event whose name is any of `names`. */
  waitForAny(names, predicate, { timeout = DEFAULT_TIMEOUT_MS, since = 0, what } = {}) {
    const description = what || `one of ${names.join(', ')} matching ${predicate.toString().replace(/\s+/g, ' ')}`;
    return this._waitUntil((e) => e.seq >= since && names.includes(e.name) && predicate(e.data), description, timeout);
  }

  _waitUntil(matches, description, timeout) {
    const found = this.events.find(matches);
    if (found) return Promise.resolve(found.data);
    return new Promise((resolve, reject) => {
      const done = () => { clearTimeout(timer); this._waiters.delete(waiter); };
      const waiter = {
        check: (entry) => {
          let ok = false;
          try { ok = matches(entry); } catch (err) { done(); reject(err); return; }
          if (ok) { done(); resolve(entry.data); }
        },
        fail: (err) => { done(); reject(err); },
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name} (${this.sdk}): timed out after ${timeout} ms waiting for ${description}\n${this.diagnostics()}`));
      }, timeout);
      if (this.exited) { done(); reject(new Error(`${this.name}'s agent has exited before ${description}\n${this.diagnostics()}`)); return; }
      this._waiters.add(waiter);
    });
  }

  /** Fails at once if an event matching `predicate` has been recorded since `since`. */
  assertNo(name, predicate, { since = 0, what } = {}) {
    const found = this.events.find((e) => e.seq >= since && e.name === name && (!predicate || predicate(e.data)));
    if (found) {
      throw new Error(`${this.name}: unexpected ${what || name}: ${short(found.data, 1000)}`);
    }
  }

  /** Waits for a snapshot of message `id` (from any message event) satisfying `predicate`. */
  waitForMessage(id, predicate, options = {}) {
    const names = ['message-added', 'message-changed', 'message-sent'];
    return this.waitForAny(names, (data) => data.message && data.message.id === id && predicate(data.message), options)
      .then((data) => data.message);
  }

  /**
   * Signs in through the SDK: connect, answer the challenge with a real login, wait for
   * `ready` and then for the WebSocket to be verified. `ready` does not wait for the socket,
   * and a user whose socket is not yet open would miss live changes (as on Layer).
   */
  async signIn({ timeout = DEFAULT_TIMEOUT_MS } = {}) {
    const since = this.mark();
    await this.call('connect', { userId: this.userId });
    await this.waitFor('challenge', null, { since, timeout, what: 'the SDK\'s challenge event' });
    const ready = await this.waitForReadyOrFail(since, timeout);
    await this.waitForSocket(since, timeout);
    return ready;
  }

  /** Waits for a socket opened after `since` to receive its first packet (counter 0). */
  waitForSocket(since = 0, timeout = DEFAULT_TIMEOUT_MS) {
    return this.waitFor('wire', (w) => {
      if (w.kind !== 'ws-in') return false;
      const packet = JSON.parse(w.frame);
      return packet.counter === 0;
    }, { since, timeout, what: 'a WebSocket verified by a first packet with counter 0' });
  }

  /** Waits for `ready`, failing early with the reason if authentication fails instead. */
  async waitForReadyOrFail(since, timeout = DEFAULT_TIMEOUT_MS) {
    const names = ['ready', 'authenticated-error', 'answer-error'];
    let outcome = null;
    await this._waitUntil((e) => {
      if (e.seq >= since && names.includes(e.name)) { outcome = e; return true; }
      return false;
    }, 'the SDK\'s ready event', timeout);
    if (outcome.name === 'ready') return outcome.data;
    throw new Error(`${this.name}: ${outcome.name} instead of ready: ${short(outcome.data, 1000)}\n${this.diagnostics()}`);
  }

  // ---------- the wire, as the SDK saw it ----------

  wire(since = 0) {
    return this.events.filter((e) => e.seq >= since && e.name === 'wire').map((e) => Object.assign({ seq: e.seq }, e.data));
  }

  /** Parsed WebSocket frames: [{seq, direction: 'in'|'out', socket, packet}]. */
  frames(since = 0) {
    return this.wire(since)
      .filter((w) => w.kind === 'ws-in' || w.kind === 'ws-out')
      .map((w) => {
        let packet = null;
        try { packet = JSON.parse(w.frame); } catch (_) { packet = { unparsable: w.frame }; }
        return { seq: w.seq, direction: w.kind === 'ws-in' ? 'in' : 'out', socket: w.socket, packet };
      });
  }

  http(since = 0) {
    return this.wire(since).filter((w) => w.kind === 'http');
  }

  diagnostics() {
    const recent = this.events.slice(-40).map((e) => {
      if (e.name === 'wire') {
        const w = e.data;
        if (w.kind === 'http') return `  #${e.seq} http ${w.method} ${w.url} → ${w.status} ${short(w.body || '', 160)}`;
        return `  #${e.seq} ${w.kind} ${short(w.frame || w.error || w.url || w.code || '', 200)}`;
      }
      return `  #${e.seq} ${e.name} ${short(e.data, 240)}`;
    });
    const out = this.output.slice(-15).map((l) => `  ${l}`);
    return [`--- last events of ${this.name} ---`, ...recent, `--- last output of ${this.name}'s agent ---`, ...out].join('\n');
  }

  /**
   * Freezes the agent's process (SIGSTOP), as a sleeping laptop would be: it neither reads
   * its socket nor runs its timers until resume(). Lets a scenario act while a client is
   * away without racing the SDK's reconnect backoff.
   */
  pause() {
    this.child.kill('SIGSTOP');
  }

  resume() {
    this.child.kill('SIGCONT');
  }

  async stop() {
    if (this.child && !this.exited) this.child.kill('SIGCONT');
    if (!this.child || this.exited) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => { if (!this.exited) this.child.kill('SIGKILL'); }, 2000);
    await exited;
    clearTimeout(timer);
  }
}

module.exports = { SimulatedUser };
