#!/usr/bin/env node
// The dashboard's dead letters a page at a time: on a page opened before
// there are any, `count` (over one page of 100) appear, the first 100 with
// a "More" button that appends the rest and then hides.
//
//   node tests/browser/paging.mjs <campaign-service URL> <stream> <count>
//
// Run by tests/e2e/tests/dashboard.rs, which prints `open` on the page's
// behalf: it waits for that line, then makes the dead letters.

import { args, onDashboard } from './browser.mjs';

const [base, stream, given] = args('<campaign-service URL> <stream> <count over 100>',
  (base, stream, count) => base && stream && Number(count) > 100);
const count = Number(given);

await onDashboard(base, async (page) => {
  await page.selectOption('#dead-stream', stream);
  await page.waitForSelector('#dead-message:text-is("none")', { timeout: 10_000 });
  console.log('open');
  const rows = '#dead-letters tbody tr';
  await page.waitForFunction((rows) => document.querySelectorAll(rows).length === 100,
    rows, { timeout: 60_000 });
  // The count moves while they are made: wait until it has settled.
  await page.waitForFunction(([stream, count]) =>
    [...document.querySelectorAll('#streams tbody tr')].some(tr =>
      tr.cells[0].textContent === stream && Number(tr.cells[2].textContent) === count),
  [stream, count], { timeout: 60_000 });
  await page.waitForSelector('#dead-more:visible', { timeout: 10_000 });
  await page.click('#dead-more');
  await page.waitForFunction(([rows, count]) => document.querySelectorAll(rows).length === count,
    [rows, count], { timeout: 10_000 });
  const ids = await page.$$eval(rows, trs => trs.map(tr => tr.dataset.id));
  const moreHidden = await page.isHidden('#dead-more');
  const problems = [];
  if (new Set(ids).size !== count) problems.push(`${new Set(ids).size} distinct rows of ${count}`);
  if (!moreHidden) problems.push('"More" is still shown on the last page');
  return { stream, shown: ids.length, moreHidden, problems };
});
