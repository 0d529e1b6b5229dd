// The same chat in Layer's own UI: the XDK's web components (conversation list, conversation
// view with its composer, identity list) and message types (text, image, choice), unmodified.
// Login is the same session flow as the plain page (src/idp.js).
import Layer from '@layerhq/web-xdk/index-all';
import { signUp, openSession, identityToken, closeSession } from './idp';
import { loadConfig } from './config';

const $ = (selector) => document.querySelector(selector);
const SESSION_KEY = 'web-chat:session';

let config;
let client = null;

function show(view) {
  for (const id of ['#login', '#chat']) $(id).hidden = id !== view;
}

function storedSession() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY));
  } catch (_) {
    return null;
  }
}

function onLoginSubmit(event) {
  event.preventDefault();
  const form = event.target;
  const email = form.email.value.trim();
  const password = form.password.value;
  form.password.value = ''; // the page never keeps the password
  $('#login-error').textContent = '';
  const signingUp = event.submitter && event.submitter.value === 'signup'
    ? signUp(config.idp, { email, password, displayName: form.display_name.value.trim() })
    : Promise.resolve();
  signingUp
    .then(() => openSession(config.idp, { email, password }))
    .then((session) => {
      const stored = { token: session.session_token, userId: session.user.id };
      sessionStorage.setItem(SESSION_KEY, JSON.stringify(stored));
      connect(stored);
    })
    .catch((err) => { $('#login-error').textContent = err.message; });
}

function endSession(message) {
  sessionStorage.removeItem(SESSION_KEY);
  // The XDK keeps one client per page: start clean.
  window.location.reload();
  $('#login-error').textContent = message || '';
}

function connect(stored) {
  // Layer.init creates the client and registers the UI components.
  client = Layer.init({
    appId: config.appId,
    url: config.layer,
    websocketUrl: config.layer.replace(/^http/, 'ws'),
    telemetryEnabled: false,
    isTrustedDevice: false,
  });
  client.on('challenge', async (evt) => {
    try {
      evt.callback(await identityToken(config.idp, stored.token, evt.nonce));
    } catch (err) {
      endSession(err.status === 401 ? 'Your session has ended; log in again.' : err.message);
    }
  });
  client.on('ready', () => {
    show('#chat');
    $('#me').textContent = client.user.displayName || client.user.userId;
    $('#my-id').textContent = client.user.userId;
  });
  client.connect(stored.userId);
}

function openConversation(conversation) {
  $('layer-conversation-view').conversation = conversation;
  $('layer-conversation-list').selectedId = conversation.id;
}

function onNewConversation(event) {
  event.preventDefault();
  const userId = event.target.user_id.value.trim();
  if (!userId) return;
  event.target.user_id.value = '';
  openConversation(client.createConversation({ participants: [userId], distinct: true }));
}

function onIdentitySelected(evt) {
  // The identity list lists the people you follow; choosing one opens your chat with them.
  const identity = evt.detail.item;
  openConversation(client.createConversation({ participants: [identity], distinct: true }));
}

/** A Choice message: a question and its answers, as Layer's ChoiceModel. */
function onPoll(event) {
  event.preventDefault();
  const conversation = $('layer-conversation-view').conversation;
  const form = event.target;
  const answers = form.choices.value.split(',').map((s) => s.trim()).filter(Boolean);
  if (!conversation || !form.question.value.trim() || answers.length < 2) return;
  // A Choice is answered by one person (`enabledFor`): here, the first other participant.
  const other = conversation.participants.find((identity) => !identity.isMine);
  if (!other) return;
  const ChoiceModel = Layer.Core.Client.getMessageTypeModelClass('ChoiceModel');
  new ChoiceModel({
    enabledFor: other.id,
    allowReselect: true, // they may change their mind
    label: form.question.value.trim(),
    choices: answers.map((text, i) => ({ id: `choice-${i + 1}`, text })),
  }).send({ conversation });
  form.reset();
}

function logOut() {
  const stored = storedSession();
  if (stored) closeSession(config.idp, stored.token).catch(() => {});
  client.logout(() => endSession('You are logged out.'));
}

async function main() {
  $('#login-form').addEventListener('submit', onLoginSubmit);
  $('#new-conversation').addEventListener('submit', onNewConversation);
  $('#poll').addEventListener('submit', onPoll);
  $('#logout').addEventListener('click', logOut);
  $('layer-conversation-list').addEventListener('layer-conversation-selected', (evt) => {
    $('layer-conversation-view').conversation = evt.detail.item;
  });
  $('layer-identity-list').addEventListener('layer-identity-item-selected', onIdentitySelected);
  try {
    config = await loadConfig();
  } catch (err) {
    $('#notice').textContent = err.message;
    return;
  }
  $('#config').textContent = `layer-idp ${config.idp} · Layer ${config.layer} · ${config.appId}`;
  const stored = storedSession();
  if (stored) connect(stored);
  else show('#login');
}

main();
