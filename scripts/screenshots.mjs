#!/usr/bin/env node
// Takes the README's screenshots of the running native stack (./start.sh)
// into docs/screenshots/: the dashboard during and after a campaign (and
// the campaign's detail panel, with its controls and chart), MailDev's inbox,
// Redis Commander showing a stream, and OpenBao's UI showing the secrets
// under secret/comms (dev's; prod's live in prod's own OpenBao) and one
// service's dev secret.
//
//   ./start.sh && node scripts/screenshots.mjs
//   SHOTS=openbao node scripts/screenshots.mjs   # only OpenBao's pictures
//
// Drives Debian's chromium (apt-get install chromium) through npm's
// playwright-core (tools/package.json), which never downloads a browser.
// Reads the stack's ports from the same variables as start.sh
// (CAMPAIGN_PORT, MAIL_UI_PORT, REDIS_COMMANDER_PORT, VAULT_PORT), and
// API_TOKEN when the stack runs in prod. It creates a campaign (CAMPAIGN_ID
// names an existing one instead), photographs Redis Commander and MailDev
// while the campaign sends, and the rest once it completed; CAMPAIGN_WAIT
// (seconds, default 600) bounds each wait. SHOTS picks the pictures:
// `campaign` (the dashboard, Redis Commander, MailDev), `openbao`, or both
// (the default, `campaign,openbao`). CHROMIUM names another browser binary.

import { createRequire } from 'node:module';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
// playwright-core is installed in tools/, not beside this script.
const require = createRequire(new URL('../tools/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const env = process.env;
const campaignUrl = `http://localhost:${env.CAMPAIGN_PORT || 8080}`;
const mailUrl = `http://localhost:${env.MAIL_UI_PORT || 9000}`;
const commanderUrl = `http://localhost:${env.REDIS_COMMANDER_PORT || 8081}`;
const vaultUrl = `http://localhost:${env.VAULT_PORT || 8200}`;
const vaultToken = env.VAULT_TOKEN || '0000';
const executablePath = env.CHROMIUM || '/usr/bin/chromium';
const campaignWait = Number(env.CAMPAIGN_WAIT || 600) * 1000;
const out = `${root}docs/screenshots`;
const shots = new Set((env.SHOTS || 'campaign,openbao').split(','));
for (const name of shots) {
  if (name !== 'campaign' && name !== 'openbao') {
    console.error(`SHOTS: ${name} is neither campaign nor openbao`);
    process.exit(1);
  }
}

if (!existsSync(executablePath)) {
  console.error(`no browser at ${executablePath}: apt-get install chromium (or set CHROMIUM)`);
  process.exit(1);
}
mkdirSync(out, { recursive: true });

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function json(url, init) {
  const response = await fetch(url, init);
  if (!response.ok) {
    throw new Error(`${init?.method || 'GET'} ${url}: ${response.status} ${await response.text()}`);
  }
  return response.json();
}

// Creates a campaign: the demo one in dev, or with API_TOKEN through the
// POST endpoint. CAMPAIGN_ID names one that exists instead.
async function createCampaign() {
  if (env.CAMPAIGN_ID) {
    return env.CAMPAIGN_ID;
  }
  let created;
  if (env.API_TOKEN) {
    created = await json(`${campaignUrl}/api/v1/campaigns`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${env.API_TOKEN}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({
        name: 'Welcome',
        subject: 'Welcome, {{ name }}',
        body: 'Hello {{ name }}, your address is {{ email }}.',
      }),
    });
  } else {
    created = await json(`${campaignUrl}/api/v1/campaign/create`);
  }
  console.log(`campaign ${created.id} created`);
  return created.id;
}

// Waits until the campaign is `completed`, or only until its first emails
// went out (`started`), within CAMPAIGN_WAIT.
async function waitFor(id, what) {
  const deadline = Date.now() + campaignWait;
  for (;;) {
    const current = await json(`${campaignUrl}/api/v1/campaigns/${id}`);
    const done = what === 'completed' ? current.status === 'completed' : current.progress.sent > 0;
    if (done) {
      console.log(`campaign ${what}: ${current.status}, ${JSON.stringify(current.progress)}`);
      return;
    }
    if (Date.now() > deadline) {
      throw new Error(`campaign ${id} not ${what} after ${campaignWait / 1000}s (CAMPAIGN_WAIT)`);
    }
    await sleep(1000);
  }
}

async function shot(page, name) {
  const path = `${out}/${name}.png`;
  await page.screenshot({ path });
  console.log(`wrote ${path.slice(root.length)}`);
}

const browser = await chromium.launch({
  executablePath,
  // The flags keep chromium from reaching out to any service of its own.
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 860 } });
  const page = await context.newPage();

  if (shots.has('campaign')) {
    await campaignShots(page);
  }
  if (shots.has('openbao')) {
    await openbaoShots(page);
  }
} finally {
  await browser.close();
}

// The dashboard, Redis Commander and MailDev, during and after a campaign.
async function campaignShots(page) {
  const id = await createCampaign();

  // The dashboard while the campaign sends: live, so no reload is needed
  // (and the network is never idle: its event stream stays open).
  await waitFor(id, 'started');
  await page.goto(`${campaignUrl}/`);
  await page.waitForSelector('#live:text("live")');
  await sleep(3000);
  await shot(page, 'dashboard-sending');

  // Its detail panel: figures, controls and the chart of its sends, a
  // few seconds of samples in.
  await page.click(`#campaigns tr[data-id="${id}"] td.status`);
  await page.waitForSelector('#detail-chart canvas');
  await sleep(8000);
  await page.locator('#detail').screenshot({ path: `${out}/dashboard-detail.png` });
  console.log('wrote docs/screenshots/dashboard-detail.png');

  // Redis Commander while the campaign runs, so that its stream holds
  // entries: its key tree folds names at ':', so open comms:*, then the
  // stream of emails.
  await page.goto(`${commanderUrl}/`);
  await page.waitForLoadState('networkidle').catch(() => {});
  await page.locator('#keyTree li[id$=":comms:"] > i.jstree-ocl').click();
  await page.locator('#keyTree a.jstree-anchor', { hasText: /^emails \(/ }).first().click();
  await page.locator('#body', { hasText: 'Key: comms:emails' }).waitFor();
  await sleep(1000);
  await shot(page, 'redis-commander');

  // MailDev while the campaign sends, too: its UI loads the whole list
  // first, which takes minutes once it holds 100,000 emails; new ones
  // stream in. The newest one opens beside the list.
  await page.goto(`${mailUrl}/`);
  await page.locator('.email-list a').first().click({ timeout: 120000 });
  await sleep(2000);
  await shot(page, 'maildev');

  await waitFor(id, 'completed');
  await page.goto(`${campaignUrl}/`);
  await page.waitForSelector('#live:text("live")');
  await sleep(3000);
  await shot(page, 'dashboard');
}

// OpenBao's UI (dev's server): secret/comms, then email-service's dev
// secret, its values masked.
async function openbaoShots(page) {
  // The UI keeps a root token in memory only: sign in once, and move
  // inside the app from there.
  await page.goto(`${vaultUrl}/ui/vault/auth?with=token&redirect_to=${encodeURIComponent('/vault/secrets/secret/list/comms/')}`);
  await page.locator('input[name="token"]').fill(vaultToken);
  await page.locator('#auth-submit').click();
  await page.getByText('dev/').first().waitFor();
  // Close the note about signing in with a root token.
  await page.locator('.flash-message button, [data-test-flash-message] button').first().click({ timeout: 3000 }).catch(() => {});
  await sleep(1000);
  await shot(page, 'openbao-list');
  await page.getByText('dev/').first().click();
  await page.getByText('email-service').first().click();
  await page.getByText('smtp_host').first().waitFor();
  await sleep(1000);
  await shot(page, 'openbao-secret');
}
