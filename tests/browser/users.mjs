#!/usr/bin/env node
// Users imported from the dashboard, and a campaign's export downloaded
// from it: a CSV chosen in the "Users" section goes to user-service, the
// page shows the counts and the rejected row by line and reason, the
// audience's count sees the new users at once; the detail panel's export
// button saves every recipient's outcome from notification-service.
//
//   node tests/browser/users.mjs <campaign-service URL> <completed campaign id> <its total>
//
// Run by tests/e2e/tests/dashboard.rs against a stack it started. Prints
// one JSON object (what it saw) and exits non-zero on the first failure
// (through browser.mjs).

import { args, onDashboard } from './browser.mjs';

const [base, id, given] = args('<campaign-service URL> <completed campaign id> <its total>',
  (base, id, total) => base && id && Number(total) > 0);
const total = Number(given);

const CSV = 'email,name,tags\r\n'
  + 'imported.one@example.com,Imported One,imported\r\n'
  + 'not an address,Nobody,imported\r\n'
  + 'imported.two@example.com,"Two, Imported",imported;beta\r\n';

await onDashboard(base, async (page) => {
  const problems = [];
  await page.setInputFiles('#import-file', { name: 'users.csv', mimeType: 'text/csv', buffer: Buffer.from(CSV) });
  await page.click('#import');
  await page.waitForFunction(() => / created, /.test(document.querySelector('#import-message').textContent)
    || document.querySelector('#import-message').classList.contains('error'), null, { timeout: 10_000 });
  const imported = await page.textContent('#import-message');
  if (imported !== 'users.csv: 2 created, 0 updated, 0 unchanged, 1 rejected') problems.push(`the import shows '${imported}'`);
  const rejections = await page.$$eval('#import-rejections tbody tr',
    rows => rows.map(row => [...row.cells].map(cell => cell.textContent)));
  if (rejections.length !== 1 || rejections[0][0] !== '3') problems.push(`the rejections shown: ${JSON.stringify(rejections)}`);

  await page.fill('#audience', "'imported' in tags");
  await page.waitForFunction(() => document.querySelector('#audience-count').textContent.startsWith('2 users'),
    null, { timeout: 10_000 }).catch(() => {});
  const counted = await page.textContent('#audience-count');
  if (!counted.startsWith('2 users')) problems.push(`the imported users' count shows '${counted}'`);

  await page.click(`#campaigns tr[data-id="${id}"] td.status`);
  await page.waitForSelector('#detail-export:visible', { timeout: 10_000 });
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 30_000 }), page.click('#detail-export')]);
  const chunks = [];
  for await (const chunk of await download.createReadStream()) chunks.push(chunk);
  const lines = Buffer.concat(chunks).toString('utf8').trim().split(/\r?\n/);
  const exported = { file: download.suggestedFilename(), header: lines[0], rows: lines.length - 1,
    sent: lines.filter(line => line.includes(',sent,')).length };
  if (exported.header !== 'notification_id,user_id,email,status,detail') problems.push(`the export's header is '${exported.header}'`);
  if (exported.rows !== total || exported.sent !== total) problems.push(`the export has ${exported.rows} rows, ${exported.sent} sent, not ${total}`);
  const message = await page.textContent('#message');
  if (message) problems.push(`the page says '${message}'`);
  return { imported, rejections, counted, exported, problems };
});
