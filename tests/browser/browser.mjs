// What the browser tests share: Debian's chromium driven by npm's
// playwright-core (from tools/, which never downloads a browser), headless,
// on a page of the dashboard; one JSON line of what was seen on stdout.

import { createRequire } from 'node:module';

const require = createRequire(new URL('../../tools/package.json', import.meta.url));
const { chromium } = require('playwright-core');

/// Opens `base` in chromium once the page's live channel is up, runs
/// `check(page)` (which returns what it saw, with a `problems` list),
/// prints that as JSON and exits non-zero if there were problems.
export async function onDashboard(base, check) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu'],
  });
  let seen;
  try {
    const page = await browser.newPage();
    await page.goto(base);
    await page.waitForSelector('#live:text("live")', { timeout: 10_000 });
    seen = await check(page);
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(seen));
  if (seen.problems.length) process.exit(1);
}
