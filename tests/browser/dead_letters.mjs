#!/usr/bin/env node
// The dashboard's dead letters in a real browser: the campaign's recipients
// not sent are listed with why, the dead letters of a stream with their
// reason and original entry, and "Replay all" replays them (the list empties live, as they are
// handled).
//
//   node tests/browser/dead_letters.mjs <campaign-service URL> <stream> <count>
//
// Run by tests/e2e/tests/dashboard.rs once `count` entries of `stream` are
// dead letters that will succeed when replayed.

import { onDashboard } from './browser.mjs';

const [base, stream, count] = [process.argv[2], process.argv[3], Number(process.argv[4])];
if (!base || !stream || !count) {
  console.error('usage: dead_letters.mjs <campaign-service URL> <stream> <count>');
  process.exit(2);
}

await onDashboard(base, async (page) => {
  // The campaign's recipients not sent, with why.
  await page.click('#campaigns button.failures');
  const failures = '#failures tbody tr';
  await page.waitForFunction(([failures, count]) => document.querySelectorAll(failures).length === count,
    [failures, count], { timeout: 10_000 });
  const notSent = await page.textContent(`${failures} td:nth-child(4)`);

  await page.selectOption('#dead-stream', stream);
  const rows = '#dead-letters tbody tr';
  await page.waitForFunction(([rows, count]) => document.querySelectorAll(rows).length === count,
    [rows, count], { timeout: 10_000 });
  const reason = await page.textContent(`${rows} td:nth-child(5)`);
  const original = await page.textContent(`${rows} code.original`);
  await page.click('#replay-all');
  await page.waitForFunction((rows) => document.querySelectorAll(rows).length === 0,
    rows, { timeout: 30_000 });
  const problems = [];
  if (!reason.startsWith('still failing')) problems.push(`unexpected reason: ${reason}`);
  if (!notSent.startsWith('dead-lettered: still failing')) problems.push(`unexpected failure: ${notSent}`);
  if (!original.includes('type=email.requested') || !original.includes('payload=')) {
    problems.push(`the original entry is not shown: ${original}`);
  }
  return { stream, listed: count, reason, notSent, original: original.slice(0, 80), left: 0, problems };
});
