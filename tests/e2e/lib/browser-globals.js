'use strict';
// The few browser globals the Layer SDKs need to run in Node, installed before the SDK is
// required. They are what a browser provides, nothing more: the SDK itself is loaded
// unmodified from node_modules.
//
// `tap` receives every HTTP exchange and WebSocket frame, so a scenario can assert what the
// SDK actually saw on the wire (a 401 body, an Event.replay round trip) and not only the
// events it fired.

const NodeXMLHttpRequest = require('xhr2');
const NodeWebSocket = require('ws');

// FileReader as far as the SDKs use it: readAsDataURL (base64-encoding non-text parts),
// readAsText (textual rich content after download), readAsArrayBuffer; results arrive
// asynchronously through onload/onloadend or addEventListener, as in a browser.
class BlobReader {
  constructor() {
    this.result = null;
    this.error = null;
    this.readyState = 0;
    this._listeners = {};
  }

  addEventListener(name, fn) {
    (this._listeners[name] = this._listeners[name] || []).push(fn);
  }

  removeEventListener(name, fn) {
    this._listeners[name] = (this._listeners[name] || []).filter((f) => f !== fn);
  }

  _emit(name) {
    const evt = { type: name, target: this };
    const handler = this[`on${name}`];
    if (typeof handler === 'function') handler.call(this, evt);
    for (const fn of this._listeners[name] || []) fn.call(this, evt);
  }

  _read(blob, convert) {
    this.readyState = 1;
    Promise.resolve(blob)
      .then((b) => b.arrayBuffer())
      .then((buf) => {
        this.result = convert(Buffer.from(buf), blob);
        this.readyState = 2;
        this._emit('load');
        this._emit('loadend');
      })
      .catch((err) => {
        this.error = err;
        this.readyState = 2;
        this._emit('error');
        this._emit('loadend');
      });
  }

  readAsDataURL(blob) {
    this._read(blob, (buf, b) => `data:${b.type || 'application/octet-stream'};base64,${buf.toString('base64')}`);
  }

  readAsText(blob) {
    this._read(blob, (buf) => buf.toString('utf8'));
  }

  readAsArrayBuffer(blob) {
    this._read(blob, (buf) => buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  }
}

function install({ tap = () => {} } = {}) {
  // The SDKs read browser APIs through `window` (window.indexedDB, atob.bind(window)).
  global.window = globalThis;

  // The SDKs ask the host for what a browser lacks (React Native passes the same hook).
  const native = {
    setImmediate,
    FileReader: BlobReader,
    OnlineEvents: null,
    atob,
    btoa,
  };
  global.getNativeSupport = (name) => native[name];

  // XMLHttpRequest: xhr2, plus what a browser does and xhr2 does not: accept a Blob as the
  // body (the rich-content upload sends one). Every exchange is reported to the tap.
  class TappedXMLHttpRequest extends NodeXMLHttpRequest {
    open(method, url, ...rest) {
      this._tapRequest = { method: String(method).toUpperCase(), url: String(url) };
      return super.open(method, url, ...rest);
    }

    send(data) {
      const request = this._tapRequest || {};
      // readystatechange (DONE) is dispatched before load, so the test hears of a response
      // before anything the SDK does because of it.
      let reported = false;
      this.addEventListener('readystatechange', () => {
        if (this.readyState !== 4 || reported) return;
        reported = true;
        let body = null;
        if (this.responseType === '' || this.responseType === 'text') {
          body = typeof this.responseText === 'string' ? this.responseText : null;
        }
        tap({
          kind: 'http',
          method: request.method,
          url: request.url,
          status: this.status,
          contentType: this.getResponseHeader('content-type'),
          requestBody: typeof data === 'string' ? data : null,
          body,
        });
      });
      if (typeof Blob !== 'undefined' && data instanceof Blob) {
        data.arrayBuffer().then(
          (buf) => super.send(Buffer.from(buf)),
          (err) => tap({ kind: 'http-error', url: request.url, error: String(err) }),
        );
        return undefined;
      }
      return super.send(data);
    }
  }
  global.XMLHttpRequest = TappedXMLHttpRequest;

  // WebSocket: the `ws` package has the W3C API the SDKs use (readyState, OPEN,
  // addEventListener); every frame in both directions goes to the tap.
  let socketSeq = 0;
  class TappedWebSocket extends NodeWebSocket {
    constructor(url, protocols, options) {
      super(url, protocols, options);
      const socket = ++socketSeq;
      this._tapSocket = socket;
      tap({ kind: 'ws-connecting', socket, url: String(url) });
      this.on('open', () => tap({ kind: 'ws-open', socket, protocol: this.protocol }));
      this.on('message', (data) => tap({ kind: 'ws-in', socket, frame: data.toString() }));
      this.on('close', (code, reason) => tap({ kind: 'ws-close', socket, code, reason: reason.toString() }));
      this.on('error', (err) => tap({ kind: 'ws-error', socket, error: String(err && err.message) }));
    }

    send(data, ...rest) {
      tap({ kind: 'ws-out', socket: this._tapSocket, frame: String(data) });
      return super.send(data, ...rest);
    }
  }
  global.WebSocket = TappedWebSocket;
}

module.exports = { install, BlobReader };
