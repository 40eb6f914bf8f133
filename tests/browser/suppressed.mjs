#!/usr/bin/env node
// A campaign with a recipient on the suppression list, on the dashboard:
// its row and its detail panel show the suppressed count beside the sent
// one, and the two add up to the total; the suppression list (read from
// user-service) shows the address, with its reason.
//
//   node tests/browser/suppressed.mjs <campaign-service URL> <campaign id> <suppressed address> <reason>
//
// Run by tests/e2e/tests/dashboard.rs against a stack it started. Prints
// one JSON object (what it saw) and exits non-zero on the first failure
// (through browser.mjs).

import { args, onDashboard } from './browser.mjs';

const [base, id, address, reason] = args('<campaign-service URL> <campaign id> <suppressed address> <reason>',
  (base, id, address, reason) => base && id && address && reason);

await onDashboard(base, async (page) => {
  const row = `#campaigns tr[data-id="${id}"]`;
  await page.waitForSelector(`${row} td.status:text-is("completed")`, { timeout: 60_000 });
  const cells = await page.evaluate((row) => Object.fromEntries(
    ['total', 'sent', 'suppressed'].map(name => [name, Number(document.querySelector(`${row} td.${name}`).textContent)])), row);
  await page.click(`${row} td.status`);
  await page.waitForSelector(`#detail[data-id="${id}"]:visible`, { timeout: 10_000 });
  const detail = await page.evaluate(() => Object.fromEntries(
    ['total', 'sent', 'suppressed'].map(field => [field, Number(document.querySelector('#detail-' + field).textContent)])));
  const problems = [];
  if (cells.suppressed < 1 || cells.sent + cells.suppressed !== cells.total) {
    problems.push(`row: ${JSON.stringify(cells)}`);
  }
  if (JSON.stringify(detail) !== JSON.stringify(cells)) problems.push(`detail panel: ${JSON.stringify(detail)}`);
  const shown = await page.waitForSelector(`#suppressions tbody td:text-is("${address}")`, { timeout: 10_000 })
    .then(() => true, () => false);
  if (!shown) {
    problems.push(`the suppression list does not show ${address}: ${await page.textContent('#suppressions-message')}`);
  }
  const listed = await page.evaluate(() => [...document.querySelectorAll('#suppressions tbody tr')]
    .map(tr => [...tr.children].map(td => td.textContent)));
  const entry = listed.find(cells => cells[0] === address);
  if (!entry || entry[1] !== reason) problems.push(`suppression list: ${JSON.stringify(listed)}`);
  return { cells, detail, listed, problems };
});
