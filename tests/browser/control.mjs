#!/usr/bin/env node
// A campaign that is sending (email-service stopped, so it stays so)
// paused, resumed, paused again and cancelled from its detail panel: each
// button shown only where the status allows it, each change shown on the
// row and the panel, live, and the API agreeing.
//
//   node tests/browser/control.mjs <campaign-service URL> <campaign id>
//
// Run by tests/e2e/tests/dashboard.rs against a stack it started. Prints
// one JSON object (what it saw) and exits non-zero on the first failure
// (through browser.mjs).

import { args, onDashboard } from './browser.mjs';

const [base, id] = args('<campaign-service URL> <campaign id>', (base, id) => [base, id]);

await onDashboard(base, async (page) => {
  const row = `#campaigns tr[data-id="${id}"]`;
  const problems = [];
  const buttons = async () => {
    const shown = [];
    for (const action of ['pause', 'resume', 'cancel']) {
      if (await page.isVisible(`#detail-${action}`)) shown.push(action);
    }
    return shown.join(' ');
  };
  const steps = [];
  const step = async (action, status, expectedButtons) => {
    await page.click(`#detail-${action}`);
    await page.waitForSelector(`${row} td.status:text-is("${status}")`, { timeout: 10_000 });
    await page.waitForSelector(`#detail-status:text-is("${status}")`, { timeout: 10_000 });
    // Past a few ticks of the live channel, whose snapshots may have been
    // taken before the change: the page stays where the change left it.
    await page.waitForTimeout(1_500);
    const api = await page.evaluate(async (id) => (await (await fetch(`/api/v1/campaigns/${id}`)).json()), id);
    const seen = { action, row: await page.textContent(`${row} td.status`), api: api.status, buttons: await buttons() };
    steps.push(seen);
    if (seen.row !== status) problems.push(`after ${action} the row shows ${seen.row}`);
    if (seen.api !== status) problems.push(`after ${action} the API says ${seen.api}`);
    if (seen.buttons !== expectedButtons) problems.push(`after ${action} the buttons are '${seen.buttons}'`);
  };

  await page.waitForSelector(`${row} td.status:text-is("sending")`, { timeout: 10_000 });
  await page.click(`${row} td.status`);
  await page.waitForSelector('#detail-pause:visible', { timeout: 10_000 });
  const before = await buttons();
  if (before !== 'pause cancel') problems.push(`while sending the buttons are '${before}'`);
  await step('pause', 'paused', 'resume cancel');
  await step('resume', 'sending', 'pause cancel');
  await step('pause', 'paused', 'resume cancel');
  await step('cancel', 'cancelled', '');
  const cancelled = await page.textContent('#detail-cancelled');
  return { id, steps, cancelled, problems };
});
