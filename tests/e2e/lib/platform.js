'use strict';
// Layer's own Node Platform API client, `layer-api@2.3.3` from npm, unmodified, pointed at
// the emulator. The client always asks for https://api.layer.com:443 and writes a request's
// body only once its socket reports the TLS handshake done (`socket.authorized` or the
// `secureConnect` event). The one hook it offers is its `agent` option, which must be an
// `https.Agent`: this agent connects to the emulator's plain-HTTP listener instead and
// reports the connection as the client expects. Nothing of the client itself is replaced.

const https = require('node:https');
const net = require('node:net');
const LayerAPI = require('layer-api');
const { request } = require('./idp');

class EmulatorAgent extends https.Agent {
  /** @param {string} listen the emulator's `host:port` */
  constructor(listen) {
    super({ keepAlive: false });
    const at = listen.lastIndexOf(':');
    this.target = { host: listen.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(listen.slice(at + 1)) };
  }

  createConnection() {
    const socket = net.connect(this.target);
    socket.authorized = false;
    socket.once('connect', () => {
      socket.authorized = true;
      socket.emit('secureConnect');
    });
    return socket;
  }
}

/** The app's Platform API token, as the emulator shows it to tests. */
async function platformToken(server) {
  const res = await request('GET', `${server.layerUrl}/_mock/apps`);
  const token = res.json && res.json.platform_tokens && res.json.platform_tokens[server.appId];
  if (!token) throw new Error(`GET /_mock/apps shows no platform token for ${server.appId}: ${res.text}`);
  return token;
}

/** A layer-api client for the server's app, talking to its emulator. */
async function layerApi(server, { version } = {}) {
  return new LayerAPI({
    token: await platformToken(server),
    appId: server.appId,
    version,
    agent: new EmulatorAgent(server.layerListen),
  });
}

/** A Platform API request the client has no method for (e.g. PATCH /users/{u}). */
async function platformRequest(server, method, path, body, extraHeaders = {}) {
  const uuid = server.appId.slice(server.appId.lastIndexOf('/') + 1);
  const headers = Object.assign({
    accept: 'application/vnd.layer+json; version=1.0',
    authorization: `Bearer ${await platformToken(server)}`,
  }, extraHeaders);
  if (method === 'PATCH') headers['content-type'] = 'application/vnd.layer-patch+json';
  return request(method, `${server.layerUrl}/apps/${uuid}${path}`, body, headers);
}

module.exports = { EmulatorAgent, layerApi, platformRequest, platformToken };
