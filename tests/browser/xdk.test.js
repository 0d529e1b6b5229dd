'use strict';
// The XDK page: Layer's own web components (conversation list, conversation view and its
// composer, identity list) and message types (text, image, choice) in headless Chromium,
// two people in two browser contexts, against layer-idp and its Layer emulator.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startServer, serveStatic, launchBrowser, BrowserUser, withArtifacts, WAIT_MS } = require('./lib/harness');
const { noisePng } = require('./lib/png');
const { account } = require('./lib/web-chat');
const { signUpOnXdkPage, compose } = require('./lib/xdk-page');

let server;
let site;
let browser;

before(async () => {
  server = await startServer();
  site = await serveStatic();
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (site) await site.close();
  if (server) await server.stop();
});

test('XDK UI: sign-up, text, image, typing, read status, the identity list', async (t) => {
  const users = [];
  await withArtifacts(t.name, users, async () => {
    const ada = await BrowserUser.open(browser, 'ada-xdk');
    const bob = await BrowserUser.open(browser, 'bob-xdk');
    users.push(ada, bob);
    await signUpOnXdkPage(ada, site.url, server, account('ada'));
    const bobId = await signUpOnXdkPage(bob, site.url, server, account('bob'));

    await ada.page.fill('input[name=user_id]', bobId);
    await ada.page.click('#new-conversation button');
    await compose(ada, 'Hello from the XDK');
    await ada.waitText('layer-message-list', 'Hello from the XDK');

    // Bob picks the conversation in the XDK's list and reads it there.
    await bob.page.locator('layer-conversation-item', { hasText: 'Ada' }).first().click({ timeout: WAIT_MS });
    await bob.waitText('layer-message-list', 'Hello from the XDK');
    await ada.waitText('layer-message-status', 'read');
    // Bob follows Ada now: she is in his identity list.
    await bob.waitText('layer-identity-list', 'Ada');

    // Typing, shown by the XDK's typing indicator.
    await bob.page.locator('layer-compose-bar textarea').pressSequentially('Got it', { delay: 30 });
    await ada.waitText('layer-typing-indicator', 'Bob');
    await bob.page.locator('layer-compose-bar textarea').press('Enter');
    await ada.waitText('layer-message-list', 'Got it');

    // An image through the composer's file button: an Image message with rich content.
    await ada.page.setInputFiles('layer-file-upload-button input[type=file]', {
      name: 'noise.png', mimeType: 'image/png', buffer: noisePng(64, 64),
    });
    await bob.page.locator('layer-image-message-view').first().waitFor({ timeout: WAIT_MS });
  });
});

test('XDK UI: a Choice answered by the other person shows the answer on the sender\'s card', async (t) => {
  const users = [];
  await withArtifacts(t.name, users, async () => {
    const ada = await BrowserUser.open(browser, 'ada-choice');
    const bob = await BrowserUser.open(browser, 'bob-choice');
    users.push(ada, bob);
    await signUpOnXdkPage(ada, site.url, server, account('ada'));
    const bobId = await signUpOnXdkPage(bob, site.url, server, account('bob'));
    await ada.page.fill('input[name=user_id]', bobId);
    await ada.page.click('#new-conversation button');
    await compose(ada, 'A question for you');
    await bob.page.locator('layer-conversation-item', { hasText: 'Ada' }).first().click({ timeout: WAIT_MS });
    await bob.waitText('layer-message-list', 'A question for you');

    // A Choice: Ada asks, Bob answers on his card, and Ada sees his answer on hers.
    await ada.page.fill('#poll input[name=question]', 'Lunch?');
    await ada.page.fill('#poll input[name=choices]', 'Pizza, Sushi');
    await ada.page.click('#poll button');
    const bobsCard = bob.page.locator('layer-choice-message-view', { hasText: 'Lunch?' });
    await bobsCard.locator('layer-action-button', { hasText: 'Sushi' }).click({ timeout: WAIT_MS });
    await bobsCard.locator('layer-action-button.layer-action-button-selected', { hasText: 'Sushi' }).waitFor({ timeout: WAIT_MS });
    const adasCard = ada.page.locator('layer-choice-message-view', { hasText: 'Lunch?' });
    await adasCard.locator('layer-action-button.layer-action-button-selected', { hasText: 'Sushi' }).waitFor({ timeout: WAIT_MS });
    assert.equal(await adasCard.locator('layer-action-button.layer-action-button-selected').count(), 1);

    // Bob changes his mind: the summary is updated, not duplicated.
    await bobsCard.locator('layer-action-button', { hasText: 'Pizza' }).click();
    await adasCard.locator('layer-action-button.layer-action-button-selected', { hasText: 'Pizza' }).waitFor({ timeout: WAIT_MS });
    assert.equal(await adasCard.locator('layer-action-button.layer-action-button-selected').count(), 1);

    // A reload loads the message with its summary: the answer is still on Ada's card.
    await ada.page.reload();
    await ada.page.locator('layer-conversation-item', { hasText: 'Bob' }).first().click({ timeout: WAIT_MS });
    const reloaded = ada.page.locator('layer-choice-message-view', { hasText: 'Lunch?' });
    await reloaded.locator('layer-action-button.layer-action-button-selected', { hasText: 'Pizza' }).waitFor({ timeout: WAIT_MS });
  });
});
