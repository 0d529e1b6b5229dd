// A web chat on the unmodified Layer Web SDK, wired to layer-idp.
//
// Login uses layer-idp's session flow: the password goes to POST /sessions once, the page
// keeps only the session token (sessionStorage), and every Layer challenge — the first
// connection, a reload, an expired Layer session — is answered with POST /identity_tokens.
import layer from 'layer-websdk';
import { signUp, openSession, identityToken, closeSession } from './idp';
import { loadConfig } from './config';

const $ = (selector) => document.querySelector(selector);
const SESSION_KEY = 'web-chat:session';
const { RECIPIENT_STATE } = layer.Constants;

let config;
let client = null;
let conversationQuery = null;
let messageQuery = null;
let current = null;        // the open Conversation
let typingListener = null;
const imageUrls = new Map(); // part id → object URL, so a re-render does not download again

// ---------- small DOM helpers ----------

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function show(view) {
  for (const id of ['#login', '#chat']) $(id).hidden = id !== view;
}

function notice(text) {
  $('#notice').textContent = text || '';
}

/** An identity's avatar: its `avatar_url` claim, or its initials. */
function avatar(identity) {
  const name = (identity && (identity.displayName || identity.userId)) || '?';
  if (identity && identity.avatarUrl) {
    return el('img', { className: 'avatar', src: identity.avatarUrl, alt: name });
  }
  const initials = name.split(/\s+/).map((w) => w[0]).join('').slice(0, 2).toUpperCase();
  return el('span', { className: 'avatar', title: name }, initials);
}

function nameOf(identity) {
  return identity ? identity.displayName || identity.userId : '';
}

// ---------- session: sign-up, login, logout ----------

function storedSession() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY));
  } catch (_) {
    return null;
  }
}

async function logIn(email, password) {
  const session = await openSession(config.idp, { email, password });
  const stored = { token: session.session_token, userId: session.user.id };
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(stored));
  connect(stored);
}

function onLoginSubmit(event) {
  event.preventDefault();
  const action = event.submitter && event.submitter.value;
  const form = event.target;
  const email = form.email.value.trim();
  const password = form.password.value;
  form.password.value = ''; // the page never keeps the password
  $('#login-error').textContent = '';
  const signingUp = action === 'signup'
    ? signUp(config.idp, {
      email, password, displayName: form.display_name.value.trim(), avatarUrl: form.avatar_url.value.trim(),
    })
    : Promise.resolve();
  signingUp
    .then(() => logIn(email, password))
    .catch((err) => { $('#login-error').textContent = err.message; });
}

function endSession(message) {
  sessionStorage.removeItem(SESSION_KEY);
  if (client) client.destroy();
  client = null;
  current = null;
  show('#login');
  $('#login-error').textContent = message || '';
}

function logOut() {
  const stored = storedSession();
  const done = () => endSession('You are logged out.');
  if (stored) closeSession(config.idp, stored.token).catch(() => {});
  if (client) client.logout(done);
  else done();
}

// ---------- the Layer client ----------

function connect(stored) {
  client = new layer.Client({
    appId: config.appId,
    url: config.layer,
    websocketUrl: config.layer.replace(/^http/, 'ws'),
    telemetryEnabled: false,   // telemetry would go to Layer's own servers
    isTrustedDevice: false,    // no Layer session in localStorage: a reload asks layer-idp again
  });
  client.on('challenge', async (evt) => {
    try {
      evt.callback(await identityToken(config.idp, stored.token, evt.nonce));
    } catch (err) {
      // The app session ended (expired, logged out elsewhere, account disabled).
      endSession(err.status === 401 ? 'Your session has ended; log in again.' : err.message);
    }
  });
  client.on('ready', onReady);
  client.on('online', (evt) => { $('#connection').textContent = evt.isOnline ? 'online' : 'offline'; });
  client.on('typing-indicator-change', (evt) => {
    if (!current || evt.conversationId !== current.id) return;
    const names = evt.typing.map((identity) => identity.displayName || identity.userId);
    $('#typing').textContent = names.length ? `${names.join(', ')} ${names.length > 1 ? 'are' : 'is'} typing…` : '';
  });
  client.connect(stored.userId);
  notice('Connecting…');
}

function onReady() {
  notice('');
  show('#chat');
  $('#connection').textContent = 'online';
  const me = client.user;
  $('#me').replaceChildren(avatar(me), el('span', { className: 'name' }, nameOf(me)));
  $('#my-id').textContent = me.userId;
  conversationQuery = client.createQuery({ model: layer.Query.Conversation, paginationWindow: 50 });
  conversationQuery.on('change', renderConversations);
  typingListener = client.createTypingListener($('#text'));
}

// ---------- conversations ----------

function conversationTitle(conversation) {
  const others = conversation.participants.filter((p) => !p.sessionOwner);
  return others.map(nameOf).join(', ') || 'Just you';
}

function renderConversations() {
  // Participants' names arrive after a new conversation is created: keep the title current.
  if (current) $('#conversation-title').textContent = conversationTitle(current);
  const items = conversationQuery.data.map((conversation) => {
    const last = conversation.lastMessage;
    const preview = last ? messagePreview(last) : 'No messages yet';
    const unread = conversation.unreadCount
      ? el('span', { className: 'unread', title: 'unread messages' }, String(conversation.unreadCount))
      : null;
    const item = el('li', { className: current && current.id === conversation.id ? 'selected' : '' },
      el('span', { className: 'title' }, conversationTitle(conversation)), unread,
      el('span', { className: 'preview' }, preview));
    item.addEventListener('click', () => openConversation(conversation));
    return item;
  });
  $('#conversations').replaceChildren(...items);
}

function messagePreview(message) {
  const part = message.parts[0];
  if (!part) return '';
  return part.mimeType.startsWith('image/') ? '[image]' : textOf(part);
}

function onNewConversation(event) {
  event.preventDefault();
  const userId = event.target.user_id.value.trim();
  if (!userId) return;
  event.target.user_id.value = '';
  const conversation = client.createConversation({ participants: [userId], distinct: true });
  openConversation(conversation);
}

function markAllRead() {
  for (const conversation of conversationQuery.data) {
    if (conversation.unreadCount) conversation.markAllMessagesAsRead();
  }
}

// ---------- one conversation ----------

function openConversation(conversation) {
  current = conversation;
  $('#conversation').hidden = false;
  $('#conversation-title').textContent = conversationTitle(conversation);
  $('#typing').textContent = '';
  typingListener.setConversation(conversation);
  if (messageQuery) messageQuery.destroy();
  messageQuery = client.createQuery({
    model: layer.Query.Message,
    predicate: `conversation.id = '${conversation.id}'`,
    paginationWindow: 100,
  });
  messageQuery.on('change', renderMessages);
  renderMessages();
  renderConversations();
}

/** What the sender sees under their own message. */
function statusOf(message) {
  if (message.readStatus === RECIPIENT_STATE.ALL) return 'read by all';
  if (message.readStatus === RECIPIENT_STATE.SOME) return 'read by some';
  if (message.deliveryStatus === RECIPIENT_STATE.ALL) return 'delivered';
  if (message.deliveryStatus === RECIPIENT_STATE.SOME) return 'delivered to some';
  return message.isSaved() ? 'sent' : 'sending';
}

function partView(part) {
  if (part.mimeType.startsWith('image/')) {
    const img = el('img', { className: 'image', alt: 'image' });
    if (imageUrls.has(part.id)) {
      img.src = imageUrls.get(part.id);
    } else if (part.body instanceof Blob) {
      imageUrls.set(part.id, URL.createObjectURL(part.body));
      img.src = imageUrls.get(part.id);
    } else if (part.hasContent) {
      // Rich content (over 2 KB): download it from its (expiring) content URL.
      part.fetchContent((blob) => {
        imageUrls.set(part.id, URL.createObjectURL(blob));
        img.src = imageUrls.get(part.id);
      });
    }
    return img;
  }
  return el('p', { className: 'text' }, textOf(part));
}

/** A part's text: plain text, the XDK's text messages, else its type (e.g. an XDK Choice). */
function textOf(part) {
  if (part.mimeType === 'text/plain') return part.body || '';
  if (part.mimeType.startsWith('application/vnd.layer.text+json')) {
    try {
      return JSON.parse(part.body).text;
    } catch (_) { /* fall through */ }
  }
  return `[${part.mimeType.split(';')[0]}]`;
}

function renderMessages() {
  if (!current || !messageQuery) return;
  const messages = [...messageQuery.data].reverse(); // the query lists newest first
  const items = messages.map((message) => {
    const mine = message.sender.sessionOwner;
    return el('li', { className: mine ? 'message mine' : 'message' },
      avatar(message.sender),
      el('div', { className: 'bubble' },
        el('span', { className: 'sender' }, nameOf(message.sender)),
        ...message.parts.map(partView),
        mine ? el('span', { className: 'status' }, statusOf(message)) : null));
  });
  $('#messages').replaceChildren(...items);
  $('#messages').scrollTop = $('#messages').scrollHeight;
  // Messages on screen are read.
  if (document.visibilityState === 'visible') {
    for (const message of messages) {
      if (message.isUnread && !message.sender.sessionOwner) message.isRead = true;
    }
  }
}

function onSend(event) {
  event.preventDefault();
  const text = $('#text').value.trim();
  if (!current || !text) return;
  current.createMessage(text).send();
  $('#text').value = '';
}

function onImage(event) {
  const file = event.target.files[0];
  if (!current || !file) return;
  current.createMessage({ parts: [{ body: file, mimeType: file.type || 'application/octet-stream' }] }).send();
  event.target.value = '';
}

// ---------- start ----------

async function main() {
  $('#login-form').addEventListener('submit', onLoginSubmit);
  $('#logout').addEventListener('click', logOut);
  $('#new-conversation').addEventListener('submit', onNewConversation);
  $('#mark-all-read').addEventListener('click', markAllRead);
  $('#composer').addEventListener('submit', onSend);
  $('#image').addEventListener('change', onImage);
  try {
    config = await loadConfig();
  } catch (err) {
    notice(err.message);
    return;
  }
  $('#config').textContent = `layer-idp ${config.idp} · Layer ${config.layer} · ${config.appId}`;
  const stored = storedSession();
  if (stored) connect(stored);
  else show('#login');
}

main();
