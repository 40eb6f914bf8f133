#!/usr/bin/env node
// What a part of the dashboard shows once the stack behind it got there:
// the send limits (`#limits`) with a quota used up, the relays
// (`#relays`) with one down and the other taking its mail.
//
//   node tests/browser/shows.mjs <campaign-service URL> <selector> <text expected in it>...
//
// Run by tests/e2e/tests/dashboard.rs and relays.rs against a stack they
// started. Prints one JSON object (what it saw) and exits non-zero on the
// first failure (through browser.mjs).

import { args, onDashboard } from './browser.mjs';

const [base, selector, ...expected] = args('<campaign-service URL> <selector> <text expected in it>...',
  (base, selector, ...expected) => base && selector && expected.length > 0);

await onDashboard(base, async (page) => {
  const problems = [];
  await page.waitForFunction(([selector, expected]) => {
    const shown = document.querySelector(selector)?.innerText ?? '';
    return expected.every(text => shown.includes(text));
  }, [selector, expected], { timeout: 15_000 }).catch(() => {});
  const shown = await page.innerText(selector);
  for (const text of expected) {
    if (!shown.includes(text)) problems.push(`${selector} shows '${shown}', without '${text}'`);
  }
  return { shown, problems };
});
