#!/usr/bin/env node
// The dashboard in a real browser (Debian's chromium through npm's
// playwright-core, from tools/): a template error is shown before anything
// is sent, the email is previewed for the sample recipient and for one
// typed in, a campaign created from the form (by a double click: one
// Idempotency-Key, one campaign) reaches `completed` on the page without a
// reload, its counts exact, and its detail panel shows them, with the
// chart of its sends over time.
//
//   node tests/browser/dashboard.mjs <campaign-service URL> <users>
//
// Run by tests/e2e/tests/dashboard.rs against a stack it started. Prints
// one JSON object (what it saw) and exits non-zero on the first failure
// (through browser.mjs).

import { args, onDashboard } from './browser.mjs';

const [base, given] = args('<campaign-service URL> <users>', (base, users) => base && Number(users));
const users = Number(given);

await onDashboard(base, async (page) => {
  // Survives only if the page is never reloaded.
  await page.evaluate(() => { window.sameDocument = true; });
  // The Idempotency-Key of each creation the page sends.
  const keys = [];
  page.on('request', (request) => {
    if (request.method() === 'POST' && new URL(request.url()).pathname === '/api/v1/campaigns') {
      keys.push(request.headers()['idempotency-key']);
    }
  });

  // A template naming a variable that does not exist: refused, shown.
  await page.fill('#name', 'from the browser');
  await page.fill('#subject', 'Hi {{ nope }}');
  await page.click('#new button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#form-error').textContent.includes('undefined variable'),
    null, { timeout: 10_000 });
  const templateError = await page.textContent('#form-error');

  // A good one: previewed for the sample recipient and for one typed in,
  // then created, then completed, live.
  await page.fill('#subject', 'Hi {{ name }}');
  const previewed = async (before) => {
    await page.click('#preview');
    await page.waitForFunction((before) => {
      const text = document.querySelector('#rendered').textContent;
      return text.startsWith('Subject: Hi ') && text !== before;
    }, before, { timeout: 10_000 });
    return page.textContent('#rendered');
  };
  const preview = await previewed('');
  await page.fill('#preview-name', 'Grace Hopper');
  await page.fill('#preview-email', 'grace@example.com');
  const typedPreview = await previewed(preview);
  const refusedKeys = keys.length;
  await page.dblclick('#new button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#message').textContent.startsWith('created '),
    null, { timeout: 10_000 });
  const id = (await page.textContent('#message')).slice('created '.length);
  const row = `#campaigns tr[data-id="${id}"]`;
  await page.waitForSelector(`${row} td.status:text-is("completed")`, { timeout: 120_000 });
  const seen = await page.evaluate((row) => ({
    sameDocument: window.sameDocument === true,
    total: Number(document.querySelector(`${row} td.total`).textContent),
    sent: Number(document.querySelector(`${row} td.sent`).textContent),
    failed: Number(document.querySelector(`${row} td.failed`).textContent),
    streams: document.querySelectorAll('#streams tbody tr').length,
    consumersShown: document.querySelector('#streams').textContent.includes('email-service'),
    rows: [...document.querySelectorAll('#campaigns tbody tr')]
      .filter(tr => tr.firstChild.textContent === 'from the browser').length,
  }), row);
  const creationKeys = keys.slice(refusedKeys);

  // Its detail panel: templates, times and the completed figures.
  await page.click(`${row} td.status`);
  await page.waitForSelector(`#detail[data-id="${id}"]:visible`, { timeout: 10_000 });
  const detail = await page.evaluate(() => Object.fromEntries(
    ['name', 'status', 'subject', 'created', 'completed', 'total', 'sent', 'pending']
      .map(field => [field, document.querySelector('#detail-' + field).textContent])));
  // Its chart: the samples the live channel brought, plotted.
  const chart = await page.evaluate(() => ({
    points: Number(document.querySelector('#detail-chart').dataset.points),
    canvas: document.querySelectorAll('#detail-chart canvas').length,
    legend: document.querySelector('#detail-chart').textContent,
  }));

  const problems = [];
  if (!seen.sameDocument) problems.push('the page was reloaded');
  if (seen.rows !== 1) problems.push(`${seen.rows} campaigns from the double click`);
  if (creationKeys.length !== 2 || !/^[0-9a-f]{32}$/.test(creationKeys[0]) || creationKeys[0] !== creationKeys[1]) {
    problems.push(`Idempotency-Keys of the double click: ${JSON.stringify(creationKeys)}`);
  }
  if (seen.total !== users || seen.sent !== users || seen.failed !== 0) {
    problems.push(`counts on the page: total ${seen.total}, sent ${seen.sent}, failed ${seen.failed}; expected ${users} sent`);
  }
  if (seen.streams === 0) problems.push('no stream figures on the page');
  if (!seen.consumersShown) problems.push("no consumer of email-service's group on the page");
  if (!preview.startsWith('Subject: Hi Ada Lovelace')) problems.push(`preview: ${preview}`);
  if (!typedPreview.startsWith('Subject: Hi Grace Hopper') || !typedPreview.includes('grace@example.com')) {
    problems.push(`preview for the recipient typed in: ${typedPreview}`);
  }
  if (detail.name !== 'from the browser' || detail.status !== 'completed' || detail.subject !== 'Hi {{ name }}'
      || Number(detail.total) !== users || Number(detail.sent) !== users || detail.pending !== '0'
      || !detail.created || detail.completed === '—') {
    problems.push(`detail panel: ${JSON.stringify(detail)}`);
  }
  if (chart.points < 2 || chart.canvas !== 1 || !chart.legend.includes('emails/s')) {
    problems.push(`the chart: ${JSON.stringify(chart)}`);
  }
  return { id, templateError, preview, typedPreview, detail, chart, creationKeys, ...seen, problems };
});
