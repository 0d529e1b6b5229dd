'use strict';
// One simulated user: a Node process that loads one real Layer SDK (the WebSDK or the XDK
// core, chosen by E2E_SDK), creates its single Client, and obeys its parent over IPC.
//
// Parent → agent: {id, cmd, args}. Agent → parent: {id, ok, result | error} for each command,
// and {event, data} for everything the SDK reports (its events, snapshots of the messages it
// holds, and the raw HTTP exchanges and WebSocket frames it made). The SDK keeps one Client
// per JavaScript realm, hence one process per user.
//
// The agent never obtains identity tokens itself: a `challenge` is reported to the parent,
// which logs in at layer-idp and sends the token back with `answer`.

const globals = require('./browser-globals');

const SDK = process.env.E2E_SDK || 'websdk';

function emit(event, data) {
  if (process.connected) process.send({ event, data });
}

globals.install({ tap: (entry) => emit('wire', entry) });

// Required only after the globals exist: both SDKs probe them at load time.
const Layer = SDK === 'xdk' ? require('@layerhq/web-xdk/index-core') : require('layer-websdk');

let client = null;
let pendingChallenge = null;
let typingPublisher = null;

// ---------- snapshots: plain data the parent can assert on ----------

function userIdOf(identity) {
  if (!identity) return null;
  return identity.userId === undefined ? null : identity.userId;
}

function errorSnapshot(err) {
  if (!err) return null;
  return {
    id: err.errType || err.id || null,
    code: err.code === undefined ? null : err.code,
    message: err.message || String(err),
    httpStatus: err.httpStatus || null,
    data: err.data && typeof err.data === 'object' ? err.data : null,
  };
}

async function bytesOf(body) {
  if (body === null || body === undefined) return null;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (typeof Blob !== 'undefined' && body instanceof Blob) return Buffer.from(await body.arrayBuffer());
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  return Buffer.from(String(body), 'utf8');
}

function partSnapshot(part) {
  const isBlob = typeof Blob !== 'undefined' && part.body instanceof Blob;
  const snap = {
    id: part.id || null,
    mimeType: part.mimeType,
    mimeAttributes: part.mimeAttributes || null,
    hasContent: Boolean(part.hasContent),
    size: part.size || 0,
    bodyKind: part.body === null || part.body === undefined ? 'none' : isBlob ? 'blob' : typeof part.body,
    body: typeof part.body === 'string' ? part.body : null,
  };
  return snap;
}

// The WebSDK keeps a message's parts in an array, the XDK in a Set.
function partsOf(message) {
  return Array.from(message.parts || []);
}

function messageSnapshot(message) {
  if (!message) return null;
  const conversation = message.getConversation ? message.getConversation(false) : null;
  return {
    id: message.id,
    conversationId: message.conversationId || (conversation && conversation.id) || null,
    position: message.position === undefined ? null : message.position,
    sender: userIdOf(message.sender),
    senderDisplayName: message.sender ? message.sender.displayName || null : null,
    isRead: Boolean(message.isRead),
    isUnread: Boolean(message.isUnread),
    syncState: message.syncState || null,
    recipientStatus: Object.assign({}, message.recipientStatus || {}),
    readStatus: message.readStatus || null,
    deliveryStatus: message.deliveryStatus || null,
    parts: partsOf(message).map(partSnapshot),
  };
}

function conversationSnapshot(conversation) {
  if (!conversation) return null;
  return {
    id: conversation.id,
    participants: (conversation.participants || []).map(userIdOf).sort(),
    participantNames: (conversation.participants || []).map((p) => p.displayName || null).sort(),
    metadata: conversation.metadata || null,
    distinct: Boolean(conversation.distinct),
    unreadCount: conversation.unreadCount === undefined ? null : conversation.unreadCount,
    lastMessageId: conversation.lastMessage ? conversation.lastMessage.id : null,
    syncState: conversation.syncState || null,
  };
}

// XDK only: a Channel and a channel Membership (Layer.Core.Channel, Layer.Core.Membership).
function channelSnapshot(channel) {
  if (!channel) return null;
  return {
    id: channel.id,
    name: channel.name || null,
    metadata: channel.metadata || null,
    isCurrentParticipant: Boolean(channel.isCurrentParticipant),
    membershipId: channel.membership ? channel.membership.id : null,
    syncState: channel.syncState || null,
  };
}

function membershipSnapshot(member) {
  if (!member) return null;
  return {
    id: member.id,
    channelId: member.channelId || null,
    userId: member.identity ? member.identity.userId || null : null,
    role: member.role || null,
  };
}

// Blob parts are converted to base64 asynchronously, so a message snapshot with blob parts
// also carries their bytes.
async function fullMessageSnapshot(message) {
  const snap = messageSnapshot(message);
  if (!snap) return null;
  await Promise.all(partsOf(message).map(async (part, i) => {
    if (snap.parts[i].bodyKind === 'blob') {
      const bytes = await bytesOf(part.body);
      snap.parts[i].base64 = bytes.toString('base64');
    }
  }));
  return snap;
}

function reportMessage(event, message, extra) {
  fullMessageSnapshot(message).then(
    (snap) => emit(event, Object.assign({ message: snap }, extra || {})),
    (err) => emit('agent-error', { where: event, error: String(err && err.stack) }),
  );
}

// ---------- the client and its events ----------

function createClient({ appId, url, websocketUrl, logLevel }) {
  const options = {
    appId,
    url,
    websocketUrl,
    // Telemetry would post to Layer's own servers: off, as any test setup would have it.
    telemetryEnabled: false,
    isTrustedDevice: false,
    isPersistenceEnabled: false,
  };
  if (SDK === 'xdk') {
    client = Layer.init(options);
  } else {
    client = new Layer.Client(options);
  }
  if (logLevel !== undefined) client.logLevel = logLevel;

  client.on('challenge', (evt) => {
    pendingChallenge = evt;
    emit('challenge', { nonce: evt.nonce });
  });
  client.on('connected', () => emit('connected', {}));
  client.on('connected-error', (evt) => emit('connected-error', { error: errorSnapshot(evt && evt.error) }));
  client.on('authenticated', () => emit('authenticated', {}));
  client.on('authenticated-error', (evt) => emit('authenticated-error', { error: errorSnapshot(evt && evt.error) }));
  client.on('deauthenticated', () => emit('deauthenticated', {}));
  client.on('ready', () => emit('ready', {
    userId: client.user ? client.user.userId : null,
    identityId: client.user ? client.user.id : null,
    displayName: client.user ? client.user.displayName : null,
  }));
  client.on('online', (evt) => emit('online', { isOnline: Boolean(evt && evt.isOnline) }));
  // WebSDK only; the XDK does not announce replays (its frames still show them).
  const supported = client.constructor._supportedEvents || [];
  if (supported.includes('websocket:replaying-events')) {
    client.on('websocket:replaying-events', () => emit('replaying-events', {}));
  }

  client.on('typing-indicator-change', (evt) => emit('typing', {
    conversationId: evt.conversationId,
    typing: (evt.typing || []).map(userIdOf).sort(),
    paused: (evt.paused || []).map(userIdOf).sort(),
  }));

  client.on('conversations:add', (evt) => {
    for (const conversation of evt.conversations || []) emit('conversation-added', { conversation: conversationSnapshot(conversation) });
  });
  client.on('identities:change', (evt) => {
    const identity = evt.target;
    if (!identity || !identity.userId) return;
    emit('identity-changed', {
      userId: identity.userId,
      properties: (evt.changes || []).map((ch) => ch.property),
      status: identity.status,
      displayName: identity.displayName || null,
    });
  });
  client.on('conversations:remove', (evt) => {
    for (const conversation of evt.conversations || []) emit('conversation-removed', { id: conversation.id });
  });
  client.on('messages:remove', (evt) => {
    for (const message of evt.messages || []) emit('message-removed', { id: message.id });
  });
  client.on('conversations:change', (evt) => {
    emit('conversation-changed', { conversation: conversationSnapshot(evt.target) });
  });
  client.on('conversations:sent', (evt) => emit('conversation-sent', { result: evt.result || null, conversation: conversationSnapshot(evt.target) }));
  client.on('conversations:sent-error', (evt) => emit('conversation-sent-error', { error: errorSnapshot(evt.error), id: evt.target && evt.target.id }));

  // XDK only: channels and their members.
  if (supported.includes('channels:add')) {
    client.on('channels:add', (evt) => {
      for (const channel of evt.channels || []) emit('channel-added', { channel: channelSnapshot(channel) });
    });
    client.on('channels:remove', (evt) => {
      for (const channel of evt.channels || []) emit('channel-removed', { id: channel.id });
    });
    client.on('channels:change', (evt) => emit('channel-changed', { channel: channelSnapshot(evt.target) }));
    client.on('members:add', (evt) => {
      for (const member of evt.members || []) emit('member-added', { member: membershipSnapshot(member) });
    });
    client.on('members:remove', (evt) => {
      for (const member of evt.members || []) emit('member-removed', { id: member.id });
    });
  }

  client.on('messages:add', (evt) => {
    for (const message of evt.messages || []) reportMessage('message-added', message);
  });
  client.on('messages:change', (evt) => {
    const properties = (evt.changes || []).map((c) => c.property);
    reportMessage('message-changed', evt.target, { properties });
  });
  client.on('messages:sent', (evt) => reportMessage('message-sent', evt.target));
  // XDK only (Client API 3.0): parts added to or removed from a sent message.
  for (const [sdkEvent, name] of [['messages:part-added', 'part-added'], ['messages:part-removed', 'part-removed']]) {
    if (!supported.includes(sdkEvent) && !(Layer.Core && Layer.Core.Message && (Layer.Core.Message._supportedEvents || []).includes(sdkEvent))) continue;
    client.on(sdkEvent, (evt) => {
      const part = evt.part || null;
      emit(name, {
        messageId: evt.target ? evt.target.id : null,
        partId: part ? part.id : null,
        mimeType: part ? part.mimeType : null,
        body: part && typeof part.body === 'string' ? part.body : null,
      });
    });
  }
  client.on('messages:sent-error', (evt) => emit('message-sent-error', { error: errorSnapshot(evt.error), id: evt.target && evt.target.id }));
  return { sdk: SDK, version: Layer.version || (Layer.Client && Layer.Client.version) || null };
}

function requireClient() {
  if (!client) throw new Error('no client yet: send "init" first');
  return client;
}

function findMessage(id) {
  const message = requireClient().getMessage(id, false);
  if (!message) throw new Error(`the client holds no message ${id}`);
  return message;
}

function findConversation(id) {
  const conversation = requireClient().getConversation(id, false);
  if (!conversation) throw new Error(`the client holds no conversation ${id}`);
  return conversation;
}

function findChannel(id) {
  const channel = requireClient().getChannel(id, false);
  if (!channel) throw new Error(`the client holds no channel ${id}`);
  return channel;
}

function makePart(spec) {
  const Part = SDK === 'xdk' ? Layer.Core.MessagePart : Layer.MessagePart;
  if (spec.base64 !== undefined) {
    const blob = new Blob([Buffer.from(spec.base64, 'base64')], { type: spec.mimeType });
    return new Part({ mimeType: spec.mimeType, body: blob });
  }
  return new Part({ mimeType: spec.mimeType, body: spec.body });
}

// Resolves when `target` fires one of the events, with the first one's event object.
function once(target, success, failure) {
  return new Promise((resolve, reject) => {
    const onSuccess = (evt) => { cleanup(); resolve(evt); };
    const onFailure = (evt) => {
      cleanup();
      const err = new Error(`${failure}: ${JSON.stringify(errorSnapshot(evt && evt.error))}`);
      reject(err);
    };
    function cleanup() {
      target.off(success, onSuccess);
      target.off(failure, onFailure);
    }
    target.on(success, onSuccess);
    target.on(failure, onFailure);
  });
}

const commands = {
  init(args) {
    return createClient(args);
  },

  connect({ userId }) {
    requireClient().connect(userId);
    return {};
  },

  // Answers the last challenge with an identity token. The SDK decodes the token locally
  // and throws at once if it is malformed or names another user; that is returned as an error.
  answer({ token }) {
    if (!pendingChallenge) throw new Error('no challenge to answer');
    const challenge = pendingChallenge;
    pendingChallenge = null;
    challenge.callback(token);
    return {};
  },

  async createConversation({ participants, distinct = false, metadata }) {
    const c = requireClient();
    const options = { participants, distinct };
    if (metadata) options.metadata = metadata;
    const conversation = c.createConversation(options);
    const sent = once(conversation, 'conversations:sent', 'conversations:sent-error');
    // A conversation is created on the server with its first message or with send().
    conversation.send();
    const evt = await sent;
    return { result: evt.result || null, conversation: conversationSnapshot(conversation) };
  },

  async sendMessage({ conversationId, parts, notification }) {
    const conversation = findConversation(conversationId);
    const message = conversation.createMessage({ parts: parts.map(makePart) });
    const sent = once(message, 'messages:sent', 'messages:sent-error');
    message.send(notification);
    await sent;
    return fullMessageSnapshot(message);
  },

  // XDK only: Layer.Core.Channel, created on the server by send() (Channel.create).
  async createChannel({ name, members, metadata }) {
    const options = { name, members };
    if (metadata) options.metadata = metadata;
    const channel = requireClient().createChannel(options);
    const sent = once(channel, 'channels:sent', 'channels:sent-error');
    channel.send();
    const evt = await sent;
    return { result: evt.result || null, channel: channelSnapshot(channel) };
  },

  async sendChannelMessage({ channelId, parts }) {
    const message = findChannel(channelId).createMessage({ parts: parts.map(makePart) });
    const sent = once(message, 'messages:sent', 'messages:sent-error');
    message.send();
    await sent;
    return fullMessageSnapshot(message);
  },

  // A channel this client does not hold yet, loaded as the app would (GET /channels/{uuid}).
  async loadChannel({ id }) {
    const c = requireClient();
    const cached = c.getChannel(id, false);
    if (cached && !cached.isLoading) return channelSnapshot(cached);
    const channel = c.getChannel(id, true);
    await once(channel, 'channels:loaded', 'channels:loaded-error');
    return channelSnapshot(channel);
  },

  channel({ id }) {
    return channelSnapshot(findChannel(id));
  },

  // join()/leave() and addMembers()/removeMembers(): PUT/DELETE {channel.url}/members/{user id}.
  joinChannel({ id }) {
    findChannel(id).join();
    return {};
  },

  leaveChannel({ id }) {
    findChannel(id).leave();
    return {};
  },

  addChannelMembers({ id, userIds }) {
    findChannel(id).addMembers(userIds);
    return {};
  },

  removeChannelMembers({ id, userIds }) {
    findChannel(id).removeMembers(userIds);
    return {};
  },

  // The XDK's queries over channels: the user's channels, a channel's messages, its members.
  async channelQuery({ model, channelId, pageSize = 100 }) {
    const c = requireClient();
    const Query = Layer.Core.Query;
    const options = { paginationWindow: pageSize };
    if (model === 'channels') {
      options.model = Query.Channel;
    } else if (model === 'messages') {
      options.model = Query.Message;
      options.predicate = `channel.id = '${channelId}'`;
    } else if (model === 'members') {
      options.model = Query.Membership;
      options.predicate = `channel.id = '${channelId}'`;
    } else {
      throw new Error(`unknown channel query model ${model}`);
    }
    const query = c.createQuery(options);
    try {
      await new Promise((resolve, reject) => {
        query.on('change', (evt) => { if (evt.type === 'data') resolve(); });
        query.on('error', (evt) => reject(new Error(`query error: ${JSON.stringify(errorSnapshot(evt.error))}`)));
      });
      const items = query.data.map((item) => c.getObject(item.id) || item);
      let data;
      if (model === 'channels') data = items.map(channelSnapshot);
      else if (model === 'messages') data = await Promise.all(items.map(fullMessageSnapshot));
      else data = items.map(membershipSnapshot);
      return { totalSize: query.totalSize, data };
    } finally {
      query.destroy();
    }
  },

  async message({ id }) {
    return fullMessageSnapshot(findMessage(id));
  },

  conversation({ id }) {
    return conversationSnapshot(findConversation(id));
  },

  markRead({ id }) {
    const message = findMessage(id);
    message.isRead = true;
    return messageSnapshot(message);
  },

  // Downloads a rich-content part the way an app does, and returns the bytes it got.
  async fetchContent({ messageId, index }) {
    const message = findMessage(messageId);
    const part = partsOf(message)[index];
    if (!part) throw new Error(`message ${messageId} has no part ${index}`);
    if (!part.hasContent) throw new Error(`part ${index} of ${messageId} is not rich content`);
    const body = await new Promise((resolve, reject) => {
      const onError = (evt) => reject(new Error(`content-loaded-error: ${JSON.stringify(errorSnapshot(evt))}`));
      part.once('content-loaded-error', onError);
      part.fetchContent((data) => {
        part.off('content-loaded-error', onError);
        resolve(data);
      });
    });
    const bytes = await bytesOf(body);
    return { base64: bytes.toString('base64'), size: bytes.length, bodyKind: typeof body === 'string' ? 'string' : 'blob' };
  },

  // Runs a Conversation or Message query the way an app's list view does, and returns
  // what it loaded (totalSize comes from the Layer-Count header). With `pages`, it then
  // widens the window page by page, as infinite scrolling does (the SDK pages with from_id).
  async query({ model, conversationId, pageSize = 100, pages = 1, sortBy }) {
    const c = requireClient();
    const Query = SDK === 'xdk' ? Layer.Core.Query : Layer.Query;
    const options = { model: model === 'messages' ? Query.Message : Query.Conversation, paginationWindow: pageSize };
    if (model === 'messages') options.predicate = `conversation.id = '${conversationId}'`;
    if (sortBy) options.sortBy = sortBy;
    const query = c.createQuery(options);
    const waitForData = () => new Promise((resolve, reject) => {
      const onChange = (evt) => {
        if (evt.type !== 'data') return;
        query.off('change', onChange);
        query.off('error', onError);
        resolve();
      };
      const onError = (evt) => {
        query.off('change', onChange);
        query.off('error', onError);
        reject(new Error(`query error: ${JSON.stringify(errorSnapshot(evt.error))}`));
      };
      query.on('change', onChange);
      query.on('error', onError);
    });
    try {
      await waitForData();
      const sizes = [query.data.length];
      for (let page = 1; page < pages && !query.pagedToEnd; page++) {
        const next = waitForData();
        query.update({ paginationWindow: pageSize * (page + 1) });
        await next;
        sizes.push(query.data.length);
      }
      const items = query.data.map((item) => c.getObject(item.id) || item);
      const data = model === 'messages'
        ? await Promise.all(items.map(fullMessageSnapshot))
        : items.map(conversationSnapshot);
      return { totalSize: query.totalSize, pagedToEnd: query.pagedToEnd, sizes, data };
    } finally {
      query.destroy();
    }
  },

  // Presence: this user's own status, as an app's status menu sets it.
  setStatus({ status }) {
    requireClient().user.setStatus(status);
    return {};
  },

  // What this client currently knows of another user's identity.
  identity({ userId }) {
    const identity = requireClient().getIdentity(userId, false);
    if (!identity) throw new Error(`the client holds no identity for ${userId}`);
    return { userId: identity.userId, displayName: identity.displayName || null, status: identity.status, isFullIdentity: Boolean(identity.isFullIdentity) };
  },

  // Typing indicators: publish a state for a conversation, as a text field would.
  typing({ conversationId, state }) {
    const c = requireClient();
    if (!typingPublisher) typingPublisher = c.createTypingPublisher();
    typingPublisher.setConversation(findConversation(conversationId));
    typingPublisher.setState(state);
    return {};
  },

  addParticipants({ conversationId, userIds }) {
    findConversation(conversationId).addParticipants(userIds);
    return {};
  },

  removeParticipants({ conversationId, userIds }) {
    findConversation(conversationId).removeParticipants(userIds);
    return {};
  },

  setMetadata({ conversationId, properties }) {
    findConversation(conversationId).setMetadataProperties(properties);
    return {};
  },

  deleteMessage({ id, mode = 'all_participants' }) {
    findMessage(id).delete(mode);
    return {};
  },

  deleteConversation({ id, mode = 'all_participants' }) {
    findConversation(id).delete(mode);
    return {};
  },

  leave({ id }) {
    findConversation(id).leave();
    return {};
  },

  logout() {
    return new Promise((resolve) => requireClient().logout(() => resolve({})));
  },

  markAllRead({ conversationId, messageId }) {
    const conversation = findConversation(conversationId);
    conversation.markAllMessagesAsRead(messageId ? findMessage(messageId) : undefined);
    return {};
  },

  // The emulator session token the SDK holds (tests replay it to check it was revoked).
  sessionToken() {
    return { sessionToken: requireClient().sessionToken || null };
  },

  session() {
    const c = requireClient();
    return {
      isAuthenticated: Boolean(c.isAuthenticated),
      isReady: Boolean(c.isReady),
      userId: c.user ? c.user.userId : null,
      hasSessionToken: Boolean(c.sessionToken),
    };
  },
};

process.on('message', async (msg) => {
  if (!msg || typeof msg.cmd !== 'string') return;
  const handler = commands[msg.cmd];
  try {
    if (!handler) throw new Error(`unknown command ${msg.cmd}`);
    const result = await handler(msg.args || {});
    if (process.connected) process.send({ id: msg.id, ok: true, result: result === undefined ? null : result });
  } catch (err) {
    if (process.connected) process.send({ id: msg.id, ok: false, error: String(err && err.stack ? err.stack : err) });
  }
});

// The SDKs log some of their failures only; report anything that escapes them.
process.on('uncaughtException', (err) => emit('agent-error', { where: 'uncaughtException', error: String(err && err.stack) }));
process.on('unhandledRejection', (err) => emit('agent-error', { where: 'unhandledRejection', error: String(err && err.stack) }));
// The parent owns this process: when it goes, so does the agent.
process.on('disconnect', () => process.exit(0));

emit('agent-ready', { sdk: SDK, pid: process.pid });
