#!/usr/bin/env node
// A campaign scheduled from the dashboard's form, then cancelled from its
// detail panel: the page shows it `scheduled` with its time, then
// `cancelled`, live, and the API agrees.
//
//   node tests/browser/schedule.mjs <campaign-service URL>
//
// Run by tests/e2e/tests/dashboard.rs against a stack it started. Prints
// one JSON object (what it saw) and exits non-zero on the first failure
// (through browser.mjs).

import { args, onDashboard } from './browser.mjs';

const [base] = args('<campaign-service URL>', (base) => base);

await onDashboard(base, async (page) => {
  await page.fill('#name', 'scheduled from the browser');
  // An hour from now, as the form's local time.
  const local = new Date(Date.now() + 3_600_000 - new Date().getTimezoneOffset() * 60_000)
    .toISOString().slice(0, 16);
  await page.fill('#send-at', local);
  await page.click('#new button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#message').textContent.startsWith('created '),
    null, { timeout: 10_000 });
  const id = (await page.textContent('#message')).slice('created '.length);
  const row = `#campaigns tr[data-id="${id}"]`;
  await page.waitForSelector(`${row} td.status:text-is("scheduled")`, { timeout: 10_000 });
  await page.click(`${row} td.status`);
  await page.waitForSelector('#detail-cancel:visible', { timeout: 10_000 });
  const sendAt = await page.textContent('#detail-send_at');
  await page.click('#detail-cancel');
  await page.waitForSelector(`${row} td.status:text-is("cancelled")`, { timeout: 10_000 });
  // Past a few ticks of the live channel, whose snapshots may have been
  // taken before the cancel: the page stays where the cancel left it.
  await page.waitForTimeout(2_000);
  const rowStatus = await page.textContent(`${row} td.status`);
  const cancelHidden = await page.isHidden('#detail-cancel');
  const api = await page.evaluate(async (id) => (await (await fetch(`/api/v1/campaigns/${id}`)).json()), id);

  const problems = [];
  if (api.status !== 'cancelled') problems.push(`the API says ${api.status}`);
  const askedMs = new Date(local).getTime();
  if (Math.abs(api.send_at - askedMs) > 60_000) problems.push(`send_at ${api.send_at}, asked ${askedMs}`);
  if (!sendAt || sendAt === 'at creation') problems.push(`detail panel's send at: ${sendAt}`);
  if (rowStatus !== 'cancelled') problems.push(`the row went back to ${rowStatus}`);
  if (!cancelHidden) problems.push('the cancel button is still shown');
  return { id, sendAt, status: api.status, problems };
});
