#!/usr/bin/env node
// The new campaign's audience on the dashboard: typing a filter shows how
// many users it selects (user-service's count), a filter that does not
// parse shows what is wrong and where, and a campaign created from the
// form goes to the segment typed.
//
//   node tests/browser/audience.mjs <campaign-service URL> <filter> <its count>
//
// Run by tests/e2e/tests/dashboard.rs against a stack it started. Prints
// one JSON object (what it saw) and exits non-zero on the first failure
// (through browser.mjs).

import { args, onDashboard } from './browser.mjs';

const [base, filter, expected] = args('<campaign-service URL> <filter> <its count>',
  (base, filter, count) => [base, filter, Number(count)]);

await onDashboard(base, async (page) => {
  const problems = [];
  const shown = async (text) => {
    await page.waitForFunction((text) => document.querySelector('#audience-count').textContent.includes(text),
      text, { timeout: 10_000 }).catch(() => {});
    return page.textContent('#audience-count');
  };
  const everyone = await shown('(everyone)');
  if (!everyone.includes('(everyone)')) problems.push(`with no filter it shows '${everyone}'`);

  await page.fill('#audience', "plan = 'pro' and");
  const error = await shown(' at ');
  if (!/at 16/.test(error)) problems.push(`a filter cut short shows '${error}'`);

  await page.fill('#audience', filter);
  const counted = await shown(`${expected} user`);
  if (!counted.startsWith(`${expected} user`)) problems.push(`the filter's count shows '${counted}', not ${expected}`);

  await page.fill('#name', 'to a segment from the browser');
  await page.click('#new button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#message').textContent.startsWith('created '),
    null, { timeout: 10_000 });
  const id = (await page.textContent('#message')).slice('created '.length);
  const api = await page.evaluate(async (id) => (await (await fetch(`/api/v1/campaigns/${id}`)).json()), id);
  if (api.audience !== filter) problems.push(`the campaign's audience is ${api.audience}`);
  return { id, everyone, error, counted, audience: api.audience, problems };
});
