#!/usr/bin/env node
// The dashboard's webhooks in a real browser: an endpoint registered from
// the form (its secret shown once), a campaign created from the form, the
// endpoint's row counting what it received without a reload, and the row
// gone once "remove" is clicked.
//
//   node tests/browser/webhooks.mjs <campaign-service URL> <receiver URL> <events expected>
//
// Run by tests/e2e/tests/dashboard.rs, which checks that the receiver got
// the events, signed with the secret this prints.

import { args, onDashboard } from './browser.mjs';

const [base, receiver, expected] = args('<campaign-service URL> <receiver URL> <events expected>',
  (base, receiver, expected) => base && receiver && Number(expected));

await onDashboard(base, async (page) => {
  await page.evaluate(() => { window.sameDocument = true; });
  await page.fill('#webhook-url', receiver);
  await page.click('#webhook-new button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#webhook-secret').textContent.includes('whsec_'),
    null, { timeout: 10_000 });
  const secret = (await page.textContent('#webhook-secret')).match(/whsec_\S+/)[0];
  const row = '#webhooks tbody tr';
  await page.waitForSelector(row, { timeout: 10_000 });

  await page.fill('#name', 'hooked');
  await page.click('#new button[type=submit]');
  await page.waitForFunction(([row, expected]) => Number(document.querySelector(`${row} td.delivered`)?.textContent)
    === Number(expected), [row, expected], { timeout: 60_000 });
  const shown = await page.$$eval(`${row} td`, (tds) => tds.map((td) => td.textContent));

  await page.click(`${row} button.remove`);
  await page.waitForFunction((row) => !document.querySelector(row), row, { timeout: 10_000 });
  const sameDocument = await page.evaluate(() => window.sameDocument === true);

  const problems = [];
  if (!sameDocument) problems.push('the page was reloaded');
  if (shown[0] !== receiver) problems.push(`the row shows another URL: ${shown[0]}`);
  if (shown[4] !== '0' || shown[5] !== '0') problems.push(`events left: ${shown}`);
  return { secret, shown, problems };
});
process.exit(0);
