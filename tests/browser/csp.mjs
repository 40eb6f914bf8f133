#!/usr/bin/env node
// The dashboard under its Content-Security-Policy: it goes live and works
// (a preview rendered by its own script) with nothing refused, and the
// policy it is served under does refuse inline code: a script and a style
// written into the page do not apply, and are reported.
//
//   node tests/browser/csp.mjs <campaign-service URL>
//
// Run by tests/e2e/tests/edge.rs. Prints one JSON object (what it saw) and
// exits non-zero on a problem (through browser.mjs).

import { args, onDashboard } from './browser.mjs';

const [base] = args('<campaign-service URL>', (base) => base);

await onDashboard(base, async (page) => {
  await page.click('#preview');
  await page.waitForFunction(() => document.querySelector('#rendered').textContent.startsWith('Subject: '),
    null, { timeout: 10_000 });
  const preview = await page.textContent('#rendered');
  // What an injected value would try: inline code, which the policy
  // refuses; on a page of its own, whose refusals are the expected ones.
  const other = await page.context().browser().newPage();
  await other.goto(base);
  const injected = await other.evaluate(async () => {
    const seen = [];
    document.addEventListener('securitypolicyviolation', (event) => seen.push(event.violatedDirective));
    const script = document.createElement('script');
    script.textContent = 'window.injectedRan = true;';
    document.body.append(script);
    const style = document.createElement('style');
    style.textContent = 'body { color: rgb(1, 2, 3); }';
    document.head.append(style);
    await new Promise((resolve) => setTimeout(resolve, 200));
    return { ran: window.injectedRan === true, styled: getComputedStyle(document.body).color === 'rgb(1, 2, 3)', seen };
  });
  await other.close();
  const problems = [];
  if (!preview.startsWith('Subject: Hello Ada Lovelace')) problems.push(`preview: ${preview}`);
  if (injected.ran || injected.styled) problems.push(`inline code applied: ${JSON.stringify(injected)}`);
  if (!injected.seen.some((d) => d.startsWith('script-src')) || !injected.seen.some((d) => d.startsWith('style-src'))) {
    problems.push(`inline code not reported as refused: ${JSON.stringify(injected)}`);
  }
  return { preview, injected, problems };
});
