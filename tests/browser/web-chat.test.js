'use strict';
// examples/web-chat in headless Chromium: two browser contexts are two people, each driving
// the page only (fill, click, read the screen), against layer-idp and its Layer emulator.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startServer, serveStatic, launchBrowser, BrowserUser, withArtifacts, WAIT_MS } = require('./lib/harness');
const { noisePng } = require('./lib/png');
const chat = require('./lib/web-chat');

const AVATAR = noisePng(32, 32);
let server;
let site;
let browser;

before(async () => {
  server = await startServer();
  site = await serveStatic({ '/avatars/ada.png': { type: 'image/png', body: AVATAR } });
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (site) await site.close();
  if (server) await server.stop();
});

/** Two people signed up through the page, Ada with an avatar, in a conversation Ada started. */
async function twoPeopleChatting(users) {
  const ada = await BrowserUser.open(browser, 'ada');
  const bob = await BrowserUser.open(browser, 'bob');
  users.push(ada, bob);
  ada.account = chat.account('ada');
  bob.account = chat.account('bob');
  await chat.signUpThroughPage(ada, site.url, server, ada.account, { avatarUrl: `${site.url}/avatars/ada.png` });
  await chat.signUpThroughPage(bob, site.url, server, bob.account);
  ada.userId = await chat.myUserId(ada);
  bob.userId = await chat.myUserId(bob);
  await chat.startChat(ada, bob.userId);
  return { ada, bob };
}

test('sign-up and login, text and an image, names and avatars, delivery and read status, typing, mark all read, logout', async (t) => {
  const users = [];
  await withArtifacts(t.name, users, async () => {
    const { ada, bob } = await twoPeopleChatting(users);
    await ada.waitText('#me', 'Ada');
    assert.equal(await ada.page.getAttribute('#me img.avatar', 'src'), `${site.url}/avatars/ada.png`);

    // Ada writes; Bob is online but has not opened the conversation: delivered, unread.
    await chat.sendText(ada, 'Hello Bob');
    await bob.waitText('#conversations li', 'Hello Bob');
    await bob.waitText('#conversations li .unread', '1');
    await chat.statusOf(ada, 'Hello Bob').filter({ hasText: /^delivered$/ }).waitFor({ timeout: WAIT_MS });

    // Bob marks everything read from the list: Ada sees it read.
    await bob.page.click('#mark-all-read');
    await bob.page.locator('#conversations li .unread').waitFor({ state: 'detached', timeout: WAIT_MS });
    await chat.statusOf(ada, 'Hello Bob').filter({ hasText: 'read by all' }).waitFor({ timeout: WAIT_MS });

    // An image over 2 KB goes as rich content; Bob opens the conversation and sees it decoded,
    // with Ada's name and avatar from her identity token's claims.
    const image = noisePng(64, 64);
    assert.ok(image.length > 2048, `the test image is ${image.length} bytes`);
    await ada.page.setInputFiles('#image', { name: 'noise.png', mimeType: 'image/png', buffer: image });
    await chat.openConversationWith(bob, 'Ada');
    const received = bob.page.locator('.message:not(.mine) img.image');
    await received.waitFor({ timeout: WAIT_MS });
    await bob.page.waitForFunction(() => {
      const img = document.querySelector('.message:not(.mine) img.image');
      return img && img.complete && img.naturalWidth === 64;
    }, null, { timeout: WAIT_MS });
    const theirs = bob.page.locator('.message:not(.mine)').last();
    assert.equal(await theirs.locator('.sender').textContent(), 'Ada');
    assert.equal(await theirs.locator('img.avatar').getAttribute('src'), `${site.url}/avatars/ada.png`);
    // Bob has it on screen, so it is read.
    await ada.page.locator('.message.mine', { has: ada.page.locator('img.image') }).locator('.status')
      .filter({ hasText: 'read by all' }).waitFor({ timeout: WAIT_MS });

    // Ada opens the conversation too; Bob types: Ada sees him typing, then his message with
    // his name and, without an avatar URL, his initials.
    await bob.page.locator('#text').pressSequentially('Nice picture', { delay: 20 });
    await ada.waitText('#typing', 'Bob is typing');
    await bob.page.click('#composer button[type=submit]');
    await ada.waitText('.message:not(.mine) .text', 'Nice picture');
    const bobs = ada.page.locator('.message:not(.mine)', { hasText: 'Nice picture' });
    assert.equal(await bobs.locator('.sender').textContent(), 'Bob');
    assert.equal((await bobs.locator('span.avatar').textContent()).trim(), 'B');
    await ada.page.locator('#typing', { hasText: /^$/ }).waitFor({ timeout: WAIT_MS });

    // Logout ends both sessions; a reload stays logged out; the password logs in again.
    await ada.page.click('#logout');
    await ada.waitText('#login-error', 'logged out');
    await ada.page.reload();
    await ada.page.locator('#login-form').waitFor({ state: 'visible' });
    await chat.logInThroughPage(ada, ada.account);
    await ada.waitText('#conversations li', 'Bob');
    await ada.waitText('#conversations li', 'Nice picture');
  });
});

test('a person offline and back: the SDK reconnects and the missed message arrives', async (t) => {
  const users = [];
  await withArtifacts(t.name, users, async () => {
    const { ada, bob } = await twoPeopleChatting(users);
    await chat.sendText(ada, 'Are you there?');
    await chat.openConversationWith(bob, 'Ada');
    await bob.waitText('.message .text', 'Are you there?');

    await bob.context.setOffline(true);
    await bob.waitText('#connection', 'offline');
    await chat.sendText(ada, 'Sent while you were away');
    await chat.statusOf(ada, 'Sent while you were away').filter({ hasText: /^sent$/ }).waitFor({ timeout: WAIT_MS });

    await bob.context.setOffline(false);
    await bob.waitText('#connection', 'online');
    await bob.waitText('.message .text', 'Sent while you were away');
    await chat.statusOf(ada, 'Sent while you were away').filter({ hasText: 'read by all' }).waitFor({ timeout: WAIT_MS });
  });
});

test('an expired Layer session is answered from the stored session token, never the password', async (t) => {
  const users = [];
  await withArtifacts(t.name, users, async () => {
    const { ada, bob } = await twoPeopleChatting(users);
    await chat.sendText(ada, 'Before expiry');
    await chat.openConversationWith(bob, 'Ada');
    await bob.waitText('.message .text', 'Before expiry');
    assert.equal(ada.idpCalls(server.idpUrl, 'POST', '/sessions').length, 1);
    assert.equal(ada.idpCalls(server.idpUrl, 'POST', '/identity_tokens').length, 1);

    // Layer ends Ada's session: her SDK is challenged again and the page answers it.
    const answered = ada.page.waitForResponse(
      (res) => res.url() === `${server.idpUrl}/identity_tokens` && res.request().method() === 'POST',
      { timeout: WAIT_MS },
    );
    const expired = await fetch(`${server.layerUrl}/_mock/users/${encodeURIComponent(ada.userId)}/expire-sessions?app_id=${encodeURIComponent(server.appId)}`, { method: 'POST' });
    assert.ok(expired.ok, `expire-sessions answered ${expired.status}`);
    assert.equal((await answered).status(), 200);

    await chat.sendText(ada, 'After expiry');
    await bob.waitText('.message .text', 'After expiry');
    assert.equal(ada.idpCalls(server.idpUrl, 'POST', '/sessions').length, 1, 'no second login with the password');
    assert.equal(ada.idpCalls(server.idpUrl, 'POST', '/identity_tokens').length, 2);
    const stored = await ada.page.evaluate(() => JSON.stringify(Object.assign({}, sessionStorage, localStorage)));
    assert.ok(!stored.includes(ada.account.password), 'the page stored the password');
  });
});
