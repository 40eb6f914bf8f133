#!/usr/bin/env node
// The send limits on the dashboard: with an hourly quota used up, the
// page says how much of it is used and that sends wait.
//
//   node tests/browser/limits.mjs <campaign-service URL> <text expected in #limits>...
//
// Run by tests/e2e/tests/dashboard.rs against a stack it started. Prints
// one JSON object (what it saw) and exits non-zero on the first failure
// (through browser.mjs).

import { args, onDashboard } from './browser.mjs';

const [base, ...expected] = args('<campaign-service URL> <text expected in #limits>...',
  (base, ...expected) => base && expected.length > 0);

await onDashboard(base, async (page) => {
  const problems = [];
  await page.waitForFunction((expected) => {
    const shown = document.querySelector('#limits').textContent;
    return expected.every(text => shown.includes(text));
  }, expected, { timeout: 15_000 }).catch(() => {});
  const shown = await page.textContent('#limits');
  for (const text of expected) {
    if (!shown.includes(text)) problems.push(`#limits shows '${shown}', without '${text}'`);
  }
  return { shown, problems };
});
