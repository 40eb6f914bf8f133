#!/usr/bin/env node
// The dashboard's dead letters in a real browser, on a page opened before
// there are any: a campaign created from the form behind an SMTP server
// that refuses everything ends with its emails dead-lettered, and without
// a reload its detail panel lists its recipients not sent with why, and
// the dead letters of the stream appear with their reason and original
// entry. Once the server accepts, one row's "replay" replays that one and
// "Replay all" the rest (the list empties live, as they are handled).
// With the stream split into partitions, its line of figures shows them,
// and each dead letter names its partition (two may share an id).
//
//   node tests/browser/dead_letters.mjs <campaign-service URL> <stream> <count> [<partitions>]
//
// Run by tests/e2e/tests/dashboard.rs against a stack whose SMTP server
// refuses: once the `count` dead letters are shown it prints the line
// `dead-lettered` and waits for a line on stdin, which says the server
// accepts now, before it replays.

import { createInterface } from 'node:readline';
import { args, onDashboard } from './browser.mjs';

const [base, stream, ...numbers] = args('<campaign-service URL> <stream> <count> [<partitions>]',
  (base, stream, count, partitions = 1) => base && stream && Number(count) && Number(partitions));
const [count, partitions] = [Number(numbers[0]), Number(numbers[1] ?? 1)];
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

await onDashboard(base, async (page) => {
  await page.evaluate(() => { window.sameDocument = true; });
  await page.selectOption('#dead-stream', stream);
  const rows = '#dead-letters tbody tr';
  await page.waitForSelector('#dead-message:text-is("none")', { timeout: 10_000 });
  const before = await page.locator(rows).count();

  await page.fill('#name', 'refused');
  await page.click('#new button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#message').textContent.startsWith('created '),
    null, { timeout: 10_000 });
  const id = (await page.textContent('#message')).slice('created '.length);

  // The dead letters appear as they are made.
  await page.waitForFunction(([rows, count]) => document.querySelectorAll(rows).length === count,
    [rows, count], { timeout: 60_000 });
  const reason = await page.textContent(`${rows} td:nth-child(5)`);
  const original = await page.textContent(`${rows} code.original`);
  const letters = await page.$$eval(rows, (trs) => trs.map((tr) => ({
    stream: tr.dataset.stream, id: tr.dataset.id, shown: tr.querySelector('td').textContent,
  })));
  const partitionLine = await page.$$eval('#streams tbody tr', (trs, stream) => trs
    .map((tr) => tr.querySelector('td'))
    .filter((td) => td.firstChild.textContent === stream)
    .map((td) => td.querySelector('small.partitions')?.textContent ?? '')[0], stream);

  // The campaign completes, all dead-lettered: its detail panel says so
  // and lists its recipients not sent, with why.
  const row = `#campaigns tr[data-id="${id}"]`;
  await page.waitForSelector(`${row} td.status:text-is("completed")`, { timeout: 60_000 });
  await page.click(`${row} button.failures`);
  const failures = '#failures tbody tr';
  await page.waitForFunction(([failures, count]) => document.querySelectorAll(failures).length === count,
    [failures, count], { timeout: 10_000 });
  const notSent = await page.textContent(`${failures} td:nth-child(4)`);
  const deadInDetail = Number(await page.textContent('#detail-dead_lettered'));

  console.log('dead-lettered');
  await lines.next();

  // One row's replay: that row goes; then "Replay all" for the rest.
  const first = `${rows}[data-id="${letters[0].id}"][data-stream="${letters[0].stream}"]`;
  await page.click(`${first} button`);
  await page.waitForFunction((first) => !document.querySelector(first), first, { timeout: 30_000 });
  const afterOne = await page.locator(rows).count();
  await page.click('#replay-all');
  await page.waitForFunction((rows) => document.querySelectorAll(rows).length === 0,
    rows, { timeout: 30_000 });
  const sameDocument = await page.evaluate(() => window.sameDocument === true);

  const problems = [];
  if (before !== 0) problems.push(`${before} dead letters before the campaign`);
  if (!sameDocument) problems.push('the page was reloaded');
  if (!reason.startsWith('still failing')) problems.push(`unexpected reason: ${reason}`);
  if (!notSent.startsWith('dead-lettered: still failing')) problems.push(`unexpected failure: ${notSent}`);
  if (deadInDetail !== count) problems.push(`the detail panel shows ${deadInDetail} dead-lettered`);
  if (!original.includes('type=email.requested') || !original.includes('payload=')) {
    problems.push(`the original entry is not shown: ${original}`);
  }
  if (afterOne !== count - 1) problems.push(`${afterOne} rows left after one replay`);
  if (partitions > 1) {
    if (!partitionLine?.startsWith(` ${partitions} partitions: `)) {
      problems.push(`the stream's line does not show its partitions: ${partitionLine}`);
    }
    for (const letter of letters) {
      const partition = letter.stream.slice(stream.length);
      if (!/^:\{\d+\}$/.test(partition) || letter.shown !== `${letter.id} ${partition.slice(1)}`) {
        problems.push(`a dead letter does not name its partition: ${JSON.stringify(letter)}`);
      }
    }
  } else if (partitionLine || letters.some((letter) => letter.stream !== stream || letter.shown !== letter.id)) {
    problems.push(`partitions shown for a stream that is not split: ${partitionLine} ${JSON.stringify(letters)}`);
  }
  return {
    id, stream, partitions, listed: count, reason, notSent, original: original.slice(0, 80), partitionLine,
    letters: letters.map((letter) => letter.shown), afterOne, left: 0, problems,
  };
});
process.exit(0);
