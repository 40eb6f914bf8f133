// What the browser tests share: Debian's chromium driven by npm's
// playwright-core (from tools/, which never downloads a browser), headless,
// on a page of the dashboard; one JSON line of what was seen on stdout.
// Every page is watched for what its Content-Security-Policy refused: a
// refusal is a problem of the test, whatever the page's own checks saw.

import { createRequire } from 'node:module';
import { basename } from 'node:path';

const require = createRequire(new URL('../../tools/package.json', import.meta.url));
const { chromium } = require('playwright-core');

/// The script's arguments (those after its path) once `valid(...them)`
/// holds; else `usage: <script> <usage>` on stderr and exit status 2.
/// Each browser test reads what to check from its command line this way.
export function args(usage, valid) {
  const given = process.argv.slice(2);
  if (!valid(...given)) {
    console.error(`usage: ${basename(process.argv[1])} ${usage}`);
    process.exit(2);
  }
  return given;
}

/// A headless chromium.
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu'],
  });
}

/// A new page of `browser` whose policy refusals (`securitypolicyviolation`
/// events, and chromium's console errors naming the policy) and uncaught
/// errors are pushed onto `refused`.
export async function watchedPage(browser, refused) {
  const page = await browser.newPage();
  await page.exposeFunction('reportPolicyViolation', (violation) => refused.push(`CSP: ${violation}`));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (event) => {
      window.reportPolicyViolation(`${event.violatedDirective} refused ${event.blockedURI || 'inline code'}`
        + ` (${event.sourceFile || ''}:${event.lineNumber || ''})`);
    });
  });
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content Security Policy/i.test(message.text())) {
      refused.push(`console: ${message.text()}`);
    }
  });
  page.on('pageerror', (error) => refused.push(`page error: ${error.message}`));
  return page;
}

/// Opens `base` in chromium once the page's live channel is up, runs
/// `check(page)` (which returns what it saw, with a `problems` list),
/// prints that as JSON, with every policy refusal added to its problems,
/// and exits non-zero if there were problems.
export async function onDashboard(base, check) {
  const browser = await launch();
  const refused = [];
  let seen;
  try {
    const page = await watchedPage(browser, refused);
    await page.goto(base);
    await page.waitForSelector('#live:text("live")', { timeout: 10_000 });
    seen = await check(page);
  } finally {
    await browser.close();
  }
  seen.problems.push(...refused);
  console.log(JSON.stringify(seen));
  if (seen.problems.length) process.exit(1);
}
