#!/usr/bin/env node
// An HTML body on the dashboard, under its Content-Security-Policy: the
// preview shows the text (derived from the HTML) and the HTML in a
// sandboxed frame, the recipient's name escaped there; a test send of the
// draft is answered; nothing is refused by the policy.
//
//   node tests/browser/html.mjs <campaign-service URL>
//
// Run by tests/e2e/tests/dashboard.rs. Prints one JSON object (what it saw)
// and exits non-zero on a problem (through browser.mjs).

import { args, onDashboard } from './browser.mjs';

const [base] = args('<campaign-service URL>', (base) => base);

await onDashboard(base, async (page) => {
  await page.fill('#body', '');
  await page.fill('#html', '<h1>Dear {{ name }}</h1><p>Read <a href="https://example.com/n">the news</a></p>');
  await page.fill('#preview-name', '<b>Ada</b>');
  await page.click('#preview');
  await page.waitForFunction(() => document.querySelector('#rendered').textContent.startsWith('Subject: '),
    null, { timeout: 10_000 });
  const text = await page.textContent('#rendered');
  await page.waitForSelector('#rendered-html:not([hidden])', { timeout: 10_000 });
  const sandbox = await page.getAttribute('#rendered-html', 'sandbox');
  const frame = page.frames().find((f) => f.url() === 'about:srcdoc');
  const heading = frame ? await frame.textContent('h1', { timeout: 5_000 }) : null;
  const bold = frame ? await frame.$$eval('b', (elements) => elements.length) : null;

  await page.fill('#test-to', 'qa.one@example.com, qa.two@example.com');
  await page.click('#test-send');
  await page.waitForFunction(() => document.querySelector('#test-message').textContent !== '',
    null, { timeout: 10_000 });
  const testMessage = await page.textContent('#test-message');

  const problems = [];
  if (!text.includes('Dear <b>Ada</b>') || !text.includes('the news (https://example.com/n)')) {
    problems.push(`text: ${text}`);
  }
  if (sandbox !== '') problems.push(`the frame is not fully sandboxed: ${sandbox}`);
  if (heading !== 'Dear <b>Ada</b>' || bold !== 0) problems.push(`frame: ${heading}, ${bold} <b>`);
  if (!testMessage.startsWith('test sent to qa.one@example.com, qa.two@example.com (2 emails)')) {
    problems.push(`test send: ${testMessage}`);
  }
  return { text, heading, bold, testMessage, problems };
});
