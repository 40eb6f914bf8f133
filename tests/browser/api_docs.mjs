#!/usr/bin/env node
// A service's OpenAPI reference (/api-docs/) renders its operations from
// the service alone: every request the page makes beyond loopback is
// refused (as on a machine without internet) and reported, and so is
// anything its Content-Security-Policy refuses.
//
//   node tests/browser/api_docs.mjs <service URL> <path of one operation>...
//
// Run by tests/e2e/tests/edge.rs. Prints one JSON object (what it saw) and
// exits non-zero on a problem.

import { args, launch, watchedPage } from './browser.mjs';

const [base, ...paths] = args('<service URL> <path of one operation>...', (base, ...paths) => base && paths.length);

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);
const browser = await launch();
const problems = [];
const elsewhere = [];
let shown = [];
try {
  const page = await watchedPage(browser, problems);
  await page.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (LOOPBACK.has(url.hostname) || url.protocol === 'data:' || url.protocol === 'blob:') return route.continue();
    elsewhere.push(url.href);
    return route.abort();
  });
  await page.goto(`${base}/api-docs/`);
  for (const path of paths) {
    await page.waitForFunction((path) => document.body.innerText.includes(path), path, { timeout: 30_000 })
      .catch(() => problems.push(`operation ${path} not shown`));
  }
  shown = await page.evaluate((paths) => paths.filter((path) => document.body.innerText.includes(path)), paths);
} finally {
  await browser.close();
}
// Scalar's bundle (its zod) probes once whether it may compile code
// (`Function('')` in a try) and works without: that refusal is expected.
const refused = problems.filter((problem) => !/^CSP: script-src refused eval \(.*\/api-docs\/scalar\.js:/.test(problem));
problems.splice(0, problems.length, ...refused);
if (elsewhere.length) problems.push(`requests beyond loopback: ${elsewhere.join(' ')}`);
console.log(JSON.stringify({ shown, elsewhere, problems }));
if (problems.length) process.exit(1);
