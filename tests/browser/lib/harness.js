'use strict';
// What every browser test needs: the built web chat served over HTTP, layer-idp with its
// Layer emulator (started as the Node end-to-end suite starts it), Debian's Chromium driven
// by playwright-core, one browser context per user, and a record of each page.
//
// Each test gets a directory under artifacts/ (git-ignored): a screenshot of every page at
// the end, and, when the test failed (or BROWSER_KEEP_LOGS is set), each page's console and
// network log.

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { startServer } = require('../../e2e/lib/server');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const PUBLIC_DIR = path.join(ROOT, 'examples', 'web-chat', 'public');
const ARTIFACTS = path.resolve(__dirname, '..', 'artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const WAIT_MS = Number(process.env.BROWSER_WAIT_MS || 20000);

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

/**
 * Serves examples/web-chat/public on 127.0.0.1 (port 0), plus in-memory `extra` files
 * (`{'/avatar.png': {type, body}}`). Resolves to {url, close}.
 */
function serveStatic(extra = {}) {
  if (!fs.existsSync(path.join(PUBLIC_DIR, 'build', 'chat.js'))) {
    throw new Error('examples/web-chat is not built: run `npm ci && npm run build` in examples/web-chat');
  }
  const server = http.createServer((req, res) => {
    const urlPath = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    if (extra[urlPath]) {
      res.writeHead(200, { 'content-type': extra[urlPath].type });
      res.end(extra[urlPath].body);
      return;
    }
    const file = path.join(PUBLIC_DIR, urlPath === '/' ? 'index.html' : urlPath);
    if (!file.startsWith(PUBLIC_DIR + path.sep) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () => new Promise((done) => { server.closeAllConnections(); server.close(done); }),
      });
    });
  });
}

function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  }
  // --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}

/** One user: a browser context of its own, its page, and the page's console and network log. */
class BrowserUser {
  constructor(name, context, page) {
    this.name = name;
    this.context = context;
    this.page = page;
    this.log = [];
    this.requests = [];
    const at = () => new Date().toISOString();
    page.on('console', (msg) => this.log.push(`${at()} console.${msg.type()}: ${msg.text()}`));
    page.on('pageerror', (err) => this.log.push(`${at()} pageerror: ${err.stack || err}`));
    page.on('request', (req) => {
      this.requests.push({ method: req.method(), url: req.url() });
      this.log.push(`${at()} → ${req.method()} ${req.url()}`);
    });
    page.on('response', (res) => this.log.push(`${at()} ← ${res.status()} ${res.request().method()} ${res.url()}`));
    page.on('requestfailed', (req) => this.log.push(`${at()} ✗ ${req.method()} ${req.url()}: ${req.failure() && req.failure().errorText}`));
    page.on('websocket', (ws) => {
      this.log.push(`${at()} websocket open ${ws.url()}`);
      ws.on('close', () => this.log.push(`${at()} websocket closed ${ws.url()}`));
    });
  }

  static async open(browser, name) {
    const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
    const page = await context.newPage();
    return new BrowserUser(name, context, page);
  }

  /** Waits until `selector` matches an element containing `text`. */
  async waitText(selector, text, timeout = WAIT_MS) {
    await this.page.locator(selector, { hasText: text }).first().waitFor({ timeout });
  }

  /** Requests to layer-idp's `path` this page has made so far. */
  idpCalls(idpUrl, method, pathname) {
    return this.requests.filter((r) => r.method === method && r.url === idpUrl + pathname);
  }
}

/**
 * Runs `fn` with a fresh artifacts directory; screenshots every user's page at the end and,
 * if `fn` failed, writes each page's log next to it.
 */
async function withArtifacts(testName, users, fn) {
  const dir = path.join(ARTIFACTS, testName.replace(/[^a-z0-9]+/gi, '-').toLowerCase());
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  let failure = null;
  try {
    await fn();
  } catch (err) {
    failure = err;
  }
  for (const user of users) {
    await user.page.screenshot({ path: path.join(dir, `${user.name}.png`), fullPage: true }).catch(() => {});
    if (failure || process.env.BROWSER_KEEP_LOGS) {
      fs.writeFileSync(path.join(dir, `${user.name}.log`), user.log.join('\n') + '\n');
    }
  }
  if (failure) {
    failure.message += `\n(screenshots and page logs in ${dir})`;
    throw failure;
  }
}

module.exports = { startServer, serveStatic, launchBrowser, BrowserUser, withArtifacts, WAIT_MS };
