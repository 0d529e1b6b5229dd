'use strict';
// The web chat's page, as a person uses it: fill, click, read what is on screen.

const crypto = require('node:crypto');

function account(name) {
  const tag = `${name}-${crypto.randomBytes(4).toString('hex')}`;
  return {
    email: `${tag}@example.test`,
    password: `pw-${crypto.randomBytes(9).toString('base64url')}`,
    displayName: name[0].toUpperCase() + name.slice(1),
  };
}

/** The page's address for this server (its IdP, emulator and app ID as query parameters). */
function pageUrl(origin, server, file = '') {
  const params = new URLSearchParams({ idp: server.idpUrl, layer: server.layerUrl, app_id: server.appId });
  return `${origin}/${file}?${params}`;
}

async function signUpThroughPage(user, origin, server, acct, { avatarUrl } = {}) {
  const { page } = user;
  await page.goto(pageUrl(origin, server));
  await page.locator('#login-form').waitFor();
  await page.fill('input[name=email]', acct.email);
  await page.fill('input[name=password]', acct.password);
  await page.fill('input[name=display_name]', acct.displayName);
  if (avatarUrl) await page.fill('input[name=avatar_url]', avatarUrl);
  await page.click('button[value=signup]');
}

async function logInThroughPage(user, acct) {
  const { page } = user;
  await page.fill('input[name=email]', acct.email);
  await page.fill('input[name=password]', acct.password);
  await page.click('button[value=login]');
}

/** Waits for the chat view and returns the user ID the page shows. */
async function myUserId(user) {
  await user.page.locator('#my-id').waitFor({ state: 'visible', timeout: 20000 });
  await user.page.waitForFunction(() => document.querySelector('#my-id').textContent.length > 0);
  return (await user.page.textContent('#my-id')).trim();
}

async function startChat(user, otherUserId) {
  await user.page.fill('input[name=user_id]', otherUserId);
  await user.page.click('#new-conversation button');
  await user.page.locator('#conversation').waitFor({ state: 'visible' });
}

async function openConversationWith(user, title) {
  await user.page.locator('#conversations li', { hasText: title }).first().click();
  await user.waitText('#conversation-title', title);
}

async function sendText(user, text) {
  await user.page.fill('#text', text);
  await user.page.click('#composer button[type=submit]');
}

/** The status line under my own message containing `text`. */
function statusOf(user, text) {
  return user.page.locator('.message.mine', { hasText: text }).locator('.status');
}

module.exports = { account, pageUrl, signUpThroughPage, logInThroughPage, myUserId, startChat, openConversationWith, sendText, statusOf };
