'use strict';
// The XDK page (examples/web-chat/public/xdk.html): Layer's own web components.

const { pageUrl } = require('./web-chat');

async function signUpOnXdkPage(user, origin, server, acct) {
  const { page } = user;
  await page.goto(pageUrl(origin, server, 'xdk.html'));
  await page.locator('#login-form').waitFor();
  await page.fill('input[name=email]', acct.email);
  await page.fill('input[name=password]', acct.password);
  await page.fill('input[name=display_name]', acct.displayName);
  await page.click('button[value=signup]');
  await page.locator('#my-id').waitFor({ state: 'visible', timeout: 20000 });
  await page.waitForFunction(() => document.querySelector('#my-id').textContent.length > 0);
  return (await page.textContent('#my-id')).trim();
}

/** Types into the XDK composer and sends with Enter, as a person does. */
async function compose(user, text) {
  const input = user.page.locator('layer-compose-bar textarea');
  await input.click();
  await input.pressSequentially(text, { delay: 15 });
  await input.press('Enter');
}

module.exports = { signUpOnXdkPage, compose };
