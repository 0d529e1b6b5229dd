'use strict';
// Starts a real `layer-idp serve` with the Layer emulator on port 0, in a fresh temporary
// directory, and learns the real addresses from its JSON log. Each test file gets its own
// server; it is killed (with its whole process group) when the file ends, or if the test
// process is interrupted.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const readline = require('node:readline');
const { spawn } = require('node:child_process');

const DEFAULT_BIN = path.resolve(__dirname, '..', '..', '..', 'target', 'debug', 'layer-idp');
const START_TIMEOUT_MS = Number(process.env.E2E_START_MS || 20000);

const running = new Set();

function killAll() {
  for (const server of running) server.kill('SIGKILL');
}
process.once('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    killAll();
    process.exit(130);
  });
}

function binaryPath() {
  return process.env.LAYER_IDP_BIN ? path.resolve(process.env.LAYER_IDP_BIN) : DEFAULT_BIN;
}

class Server {
  constructor({ child, dir, appId, logLines, stderrLines }) {
    this.child = child;
    this.dir = dir;
    this.appId = appId;
    this.logLines = logLines;
    this.stderrLines = stderrLines;
    this.exited = null;
  }

  get keysDir() {
    return path.join(this.dir, 'keys');
  }

  /** The development provider ID and key ID this server signs with. */
  developmentIds() {
    return JSON.parse(fs.readFileSync(path.join(this.keysDir, 'development.json'), 'utf8'));
  }

  kill(signal = 'SIGTERM') {
    if (this.exited) return;
    try {
      // The server leads its own process group: take any child it started with it.
      process.kill(-this.child.pid, signal);
    } catch (_) {
      try { this.child.kill(signal); } catch (__) { /* already gone */ }
    }
  }

  async stop() {
    if (this.exited) { running.delete(this); this._cleanup(); return; }
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
    running.delete(this);
    this._cleanup();
  }

  _cleanup() {
    if (process.env.E2E_KEEP_TMP) return;
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  logTail(n = 30) {
    return [
      '--- server stdout (last lines) ---',
      ...this.logLines.slice(-n),
      '--- server stderr (last lines) ---',
      ...this.stderrLines.slice(-n),
    ].join('\n');
  }
}

/**
 * @param {object} [options]
 * @param {boolean} [options.emulator=true]  also run the Layer emulator
 * @param {object} [options.env]  extra LAYER_IDP_* settings
 * @param {string} [options.appId]
 * @param {string[]} [options.appIds]  several apps for the emulator (the first is `appId`)
 */
async function startServer({ emulator = true, env = {}, appId, appIds } = {}) {
  const bin = binaryPath();
  if (!fs.existsSync(bin)) {
    throw new Error(`layer-idp binary not found at ${bin}: build it (cargo build) or set LAYER_IDP_BIN`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'layer-idp-e2e-'));
  const apps = appIds || [appId || `layer:///apps/staging/${crypto.randomUUID()}`];
  const app = apps[0];
  const args = ['serve', '--listen', '127.0.0.1:0'];
  if (emulator) {
    args.push('--mock-layer-listen', '127.0.0.1:0');
    for (const id of apps) args.push('--mock-layer-app-id', id);
  }

  // The server reads every LAYER_IDP_* variable as a setting and refuses unknown ones
  // (LAYER_IDP_BIN is the suite's, not the server's); a developer's own settings must not
  // leak into the tests either. Only what a scenario asks for is passed on.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LAYER_IDP_')));
  const childEnv = Object.assign(inherited, {
    LAYER_IDP_DATA_DIR: path.join(dir, 'data'),
    LAYER_IDP_KEYS_DIR: path.join(dir, 'keys'),
    // Cheap hashing: the suite logs in dozens of times; the hashing itself is not under test.
    LAYER_IDP_PASSWORDS__ARGON2_MEMORY_KIB: '64',
    LAYER_IDP_PASSWORDS__ARGON2_ITERATIONS: '1',
    LAYER_IDP_LOG__FORMAT: 'json',
  }, env);
  delete childEnv.DATABASE_URL;
  delete childEnv.LAYER_IDP_CONFIG;

  const child = spawn(bin, args, { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const logLines = [];
  const stderrLines = [];
  const server = new Server({ child, dir, appId: app, logLines, stderrLines });
  running.add(server);

  readline.createInterface({ input: child.stderr }).on('line', (line) => {
    stderrLines.push(line);
    if (stderrLines.length > 500) stderrLines.shift();
  });

  const wanted = { idp: null, layer: null };
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`layer-idp did not report ${!wanted.idp ? '"identity provider listening"' : '"Layer emulator listening"'} within ${START_TIMEOUT_MS} ms\n  ${bin} ${args.join(' ')}\n${server.logTail()}`));
    }, START_TIMEOUT_MS);
    const check = () => {
      if (wanted.idp && (!emulator || wanted.layer)) { clearTimeout(timer); resolve(); }
    };
    child.once('exit', (code, signal) => {
      server.exited = { code, signal };
      clearTimeout(timer);
      reject(new Error(`layer-idp exited (code ${code}, signal ${signal}) before it was listening\n  ${bin} ${args.join(' ')}\n${server.logTail()}`));
    });
    child.once('error', (err) => { clearTimeout(timer); reject(err); });
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      logLines.push(line);
      if (logLines.length > 2000) logLines.shift();
      let entry;
      try { entry = JSON.parse(line); } catch (_) { return; }
      const fields = Object.assign({}, entry.fields || {}, entry);
      const message = fields.message || fields.msg;
      if (message === 'identity provider listening' && fields.listen) wanted.idp = fields;
      if (message === 'Layer emulator listening' && fields.listen) wanted.layer = fields;
      check();
    });
  });
  try {
    await ready;
  } catch (err) {
    await server.stop().catch(() => {});
    throw err;
  }
  child.on('exit', (code, signal) => { server.exited = { code, signal }; });

  server.idpListen = wanted.idp.listen;
  server.idpUrl = `http://${wanted.idp.listen}`;
  if (emulator) {
    server.layerListen = wanted.layer.listen;
    server.layerUrl = `http://${wanted.layer.listen}`;
    server.layerWsUrl = `ws://${wanted.layer.listen}`;
    server.layerFields = wanted.layer;
  }
  return server;
}

module.exports = { startServer, binaryPath };
