#!/usr/bin/env node
// The dashboard of a service that needs an API token: a campaign created
// without one is refused with the token field pointed out and a message
// saying a token is needed; typed in, the same creation succeeds.
//
//   node tests/browser/token.mjs <campaign-service URL> <token>
//
// Run by tests/e2e/tests/dashboard.rs against a stack in prod mode.

import { args, onDashboard } from './browser.mjs';

const [base, token] = args('<campaign-service URL> <token>', (base, token) => base && token);

await onDashboard(base, async (page) => {
  await page.evaluate(() => localStorage.removeItem('comms-token'));
  await page.fill('#token', '');
  await page.fill('#name', 'needs a token');
  await page.click('#new button[type=submit]');
  // (The dead letters, loaded with the page, may have asked already.)
  await page.waitForFunction(() => document.querySelector('#form-error').textContent !== '',
    null, { timeout: 10_000 });
  const refused = await page.evaluate(() => ({
    message: document.querySelector('#token-message').textContent,
    highlighted: document.querySelector('#token').classList.contains('needed'),
    focused: document.activeElement === document.querySelector('#token'),
    created: document.querySelector('#message').textContent,
    error: document.querySelector('#form-error').textContent,
  }));

  await page.fill('#token', token);
  const cleared = await page.textContent('#token-message');
  await page.click('#new button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#message').textContent.startsWith('created '),
    null, { timeout: 10_000 });
  const created = await page.textContent('#message');

  const problems = [];
  if (!refused.message.includes('API token is needed')) problems.push(`message: ${refused.message}`);
  if (!refused.highlighted || !refused.focused) problems.push(`the token field is not pointed out: ${JSON.stringify(refused)}`);
  if (refused.created !== '' || !refused.error.includes('Bearer')) {
    problems.push(`created without a token: ${JSON.stringify(refused)}`);
  }
  if (cleared !== '') problems.push(`the message stays once a token is typed: ${cleared}`);
  return { refused, created, problems };
});
