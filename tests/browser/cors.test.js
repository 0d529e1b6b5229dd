'use strict';
// CORS both ways, as the browser enforces it: with production keys, a page on a listed
// origin logs in; the same page on an origin that is not listed is blocked by the browser
// before its sign-up ever reaches layer-idp.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const { execFileSync } = require('node:child_process');
const { startServer, serveStatic, launchBrowser, BrowserUser, withArtifacts } = require('./lib/harness');
const { binaryPath } = require('../e2e/lib/server');
const chat = require('./lib/web-chat');

let server;
let listed;
let unlisted;
let browser;
let keysDir;

before(async () => {
  listed = await serveStatic();
  unlisted = await serveStatic();
  // Production-like: configured keys (no development loopback rule), one origin listed.
  keysDir = fs.mkdtempSync(path.join(os.tmpdir(), 'layer-idp-browser-keys-'));
  // The binary reads every LAYER_IDP_* variable as a setting (LAYER_IDP_BIN is the suite's).
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LAYER_IDP_')));
  execFileSync(binaryPath(), ['keys', 'generate', '--out-dir', keysDir, '--name', 'prod'], { stdio: 'ignore', env });
  server = await startServer({
    env: {
      LAYER_IDP_PROVIDER_ID: `layer:///providers/${crypto.randomUUID()}`,
      LAYER_IDP_SIGNING__KEY_ID: `layer:///keys/${crypto.randomUUID()}`,
      LAYER_IDP_SIGNING__PRIVATE_KEY_FILE: path.join(keysDir, 'prod.private.pem'),
      LAYER_IDP_HTTP__CORS_ALLOWED_ORIGINS: listed.url,
    },
  });
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  for (const site of [listed, unlisted]) if (site) await site.close();
  if (server) await server.stop();
  if (keysDir) fs.rmSync(keysDir, { recursive: true, force: true });
});

test('a listed origin signs up and logs in; an origin that is not listed is blocked by the browser', async (t) => {
  const users = [];
  await withArtifacts(t.name, users, async () => {
    const allowed = await BrowserUser.open(browser, 'listed-origin');
    const blocked = await BrowserUser.open(browser, 'unlisted-origin');
    users.push(allowed, blocked);

    const ok = chat.account('ada');
    await chat.signUpThroughPage(allowed, listed.url, server, ok);
    assert.ok((await chat.myUserId(allowed)).length > 0);

    const refused = chat.account('eve');
    await chat.signUpThroughPage(blocked, unlisted.url, server, refused);
    await blocked.waitText('#login-error', 'Could not reach layer-idp');
    assert.ok(
      blocked.log.some((line) => /blocked by CORS policy/.test(line) && line.includes(server.idpUrl)),
      'Chromium reports the CORS block in the console',
    );
    // The preflight was refused, so the sign-up never reached layer-idp: the account does not exist.
    const login = await fetch(`${server.idpUrl}/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: refused.email, password: refused.password }),
    });
    assert.equal(login.status, 401);
    await blocked.page.locator('#chat').waitFor({ state: 'hidden' });
  });
});
