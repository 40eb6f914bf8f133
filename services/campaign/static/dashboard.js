// The dashboard's script (index.html), served as a file of its own so
// that its Content-Security-Policy allows no inline script.
// Live: one EventSource on /api/v1/campaigns/events, which sends each
// campaign when it changes and the stream figures when they change.
const $ = selector => document.querySelector(selector);
const cell = (text, cls) => { const td = document.createElement('td'); td.textContent = text; if (cls) td.className = cls; return td; };
const campaigns = new Map();

const token = $('#token');
token.value = localStorage.getItem('comms-token') || '';
token.onchange = () => {
  localStorage.setItem('comms-token', token.value);
  // What the token guards is shown as soon as it is typed.
  if ($('#dead-stream').value) loadDeadLetters();
};
token.oninput = () => { token.classList.remove('needed'); $('#token-message').textContent = ''; };
// A request behind the token: with it when one was typed; a 401 points
// at the token field.
async function guarded(url, init = {}) {
  const headers = { ...(init.headers || {}) };
  if (token.value) headers.authorization = 'Bearer ' + token.value;
  const response = await fetch(url, { ...init, headers });
  if (response.status === 401) {
    token.classList.add('needed');
    $('#token-message').textContent = token.value
      ? 'this API token is not accepted: enter the right one'
      : 'an API token is needed: enter it here';
    token.focus();
  }
  return response;
}

// Rate and ETA from the progress seen over the last few seconds.
const history = new Map();
function pace(c) {
  const done = c.progress.total - c.progress.pending;
  const samples = (history.get(c.id) || []).concat([[Date.now(), done]])
    .filter(([at], i, all) => i === all.length - 1 || all[all.length - 1][0] - at <= 5000);
  history.set(c.id, samples);
  if (c.status !== 'sending' || samples.length < 2) return ['', ''];
  const [[t0, d0], [t1, d1]] = [samples[0], samples[samples.length - 1]];
  const rate = (d1 - d0) / ((t1 - t0) / 1000);
  if (!(rate > 0)) return ['0', ''];
  return [Math.round(rate), Math.ceil(c.progress.pending / rate) + ' s'];
}

const notSent = c => c.progress.failed + c.progress.dead_lettered;

function campaignRow(c, rate, eta) {
  const tr = document.createElement('tr');
  tr.dataset.id = c.id;
  if (c.id === detailId) tr.className = 'open';
  tr.onclick = () => openDetail(c.id);
  const p = c.progress, bar = document.createElement('progress');
  bar.max = p.total || 1; bar.value = p.total - p.pending;
  const td = document.createElement('td'); td.append(bar);
  const id = cell(c.id);
  if (notSent(c) > 0) {
    const button = document.createElement('button');
    button.textContent = 'not sent';
    button.className = 'failures';
    id.append(' ', button);
  }
  tr.append(cell(c.name), cell(c.status, 'status'), td, cell(p.total, 'n total'), cell(p.sent, 'n sent'),
            cell(p.failed, 'n failed'), cell(p.dead_lettered, 'n'), cell(p.suppressed, 'n suppressed'),
            cell(p.cancelled, 'n cancelled'), cell(p.pending, 'n'),
            cell(rate, 'n'), cell(eta, 'n'), id);
  return tr;
}

// The detail panel of one campaign (a click on its row opens it): its
// templates, times and figures, kept live by showCampaign, and its
// recipients not sent.
let detailId = null;
function openDetail(id) {
  detailId = id;
  for (const row of document.querySelectorAll('#campaigns tbody tr')) {
    row.classList.toggle('open', row.dataset.id === id);
  }
  $('#detail').hidden = false;
  renderDetail();
  const c = campaigns.get(id).campaign;
  $('#failures-view').hidden = true;
  if (notSent(c) > 0) showFailures(c, '');
}
const time = ms => ms == null ? '—' : new Date(ms).toLocaleString();
function renderDetail() {
  const { campaign: c, rate, eta } = campaigns.get(detailId);
  $('#detail').dataset.id = c.id;
  $('#detail-name').textContent = c.name;
  for (const field of ['id', 'status', 'subject', 'body']) $('#detail-' + field).textContent = c[field];
  if (c.body === '' && c.html != null) $('#detail-body').textContent = '(derived from the HTML)';
  $('#detail-html').textContent = c.html ?? '—';
  $('#detail-created').textContent = time(c.created_at);
  $('#detail-completed').textContent = time(c.completed_at);
  $('#detail-send_at').textContent = c.send_at == null ? 'at creation' : time(c.send_at);
  $('#detail-started').textContent = c.started_at == null ? '—'
    : `${time(c.started_at)} (${Math.round((c.started_at - c.send_at) / 1000)} s after its time)`;
  // What the campaign's status lets it do (the API answers 409 to the rest).
  $('#detail-pause').hidden = !['expanding', 'sending'].includes(c.status);
  $('#detail-resume').hidden = c.status !== 'paused';
  $('#detail-cancel').hidden = !['scheduled', 'expanding', 'sending', 'paused'].includes(c.status);
  $('#detail-resend').hidden = c.completed_at == null || notSent(c) === 0;
  for (const field of ['total', 'sent', 'failed', 'dead_lettered', 'suppressed', 'cancelled', 'pending']) {
    $('#detail-' + field).textContent = c.progress[field];
  }
  $('#detail-rate').textContent = rate;
  $('#detail-eta').textContent = eta;
  drawChart(c.id);
}
// The open campaign paused, resumed or cancelled; the answer is the
// campaign as it is now.
for (const action of ['pause', 'resume', 'cancel']) {
  $('#detail-' + action).onclick = async () => {
    const url = `/api/v1/campaigns/${encodeURIComponent(detailId)}/${action}`;
    const response = await guarded(url, { method: 'POST' });
    const answer = await response.json();
    if (!response.ok) { $('#message').textContent = answer.error; return; }
    showCampaign(answer, true);
  };
}
// A finished campaign resent to its recipients that failed or were
// dead-lettered: a new campaign, opened here.
$('#detail-resend').onclick = async () => {
  const response = await guarded(`/api/v1/campaigns/${encodeURIComponent(detailId)}/resend`, { method: 'POST' });
  const answer = await response.json();
  if (!response.ok) { $('#message').textContent = answer.error; return; }
  $('#message').textContent = 'created ' + answer.id;
  showCampaign(answer, true);
  openDetail(answer.id);
};
// Every recipient of the open campaign and where they stand, as CSV, from
// notification-service, which keeps them (<meta name="notification-service">;
// it lets this page's origin read it): fetched with the token (it holds
// addresses), then saved as a file.
$('#detail-export').onclick = async () => {
  const exportUrl = $('meta[name="notification-service"]').content
    + `/api/v1/campaigns/${encodeURIComponent(detailId)}/export`;
  const response = await guarded(exportUrl).catch(() => null);
  if (!response || !response.ok) {
    $('#message').textContent = response ? (await response.json()).error
      : `cannot read ${exportUrl} from this page: is notification-service up, `
        + `and this page's origin (${location.origin}) its PUBLIC_URL or among its ALLOWED_ORIGINS?`;
    return;
  }
  const link = document.createElement('a');
  link.href = URL.createObjectURL(await response.blob());
  link.download = `campaign-${detailId}.csv`;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
};
$('#detail-close').onclick = () => {
  detailId = null;
  $('#detail').hidden = true;
  for (const row of document.querySelectorAll('#campaigns tbody tr.open')) row.classList.remove('open');
};

// A campaign's recipients that were not sent, a page at a time (they hold
// addresses: in prod the token is needed).
async function showFailures(c, after) {
  const url = `/api/v1/campaigns/${encodeURIComponent(c.id)}/failures?limit=100&after=${encodeURIComponent(after)}`;
  const response = await guarded(url);
  const page = await response.json();
  if (!response.ok) { $('#message').textContent = page.error; return; }
  if (c.id !== detailId) return;
  $('#failures-view').hidden = false;
  const rows = page.failures.map(f => {
    const tr = document.createElement('tr');
    tr.append(cell(f.notification_id), cell(f.status), cell(f.recipient ?? ''), cell(f.detail ?? ''));
    return tr;
  });
  const body = $('#failures tbody');
  if (after) body.append(...rows); else body.replaceChildren(...rows);
  const more = $('#failures-more');
  more.hidden = !page.next_after;
  more.onclick = () => showFailures(c, page.next_after);
}

// A live snapshot taken before a change (a pause's answer, say) can arrive
// after it, and must not take the page back: for a moment after a change
// made here, only snapshots that show it are taken. Past that, and for
// changes made elsewhere, the live channel is the truth.
const SETTLE_MS = 3000;
const changedHere = new Map();
function stale(c) {
  const changed = changedHere.get(c.id);
  if (!changed || Date.now() - changed.at > SETTLE_MS) return false;
  return c.status !== changed.status;
}

function showCampaign(c, fromChange = false) {
  if (fromChange) changedHere.set(c.id, { status: c.status, at: Date.now() });
  else if (stale(c)) return;
  chartSample(c);
  const [rate, eta] = pace(c);
  const row = campaignRow(c, rate, eta), old = campaigns.get(c.id);
  campaigns.set(c.id, { campaign: c, row, rate, eta });
  if (c.id === detailId) {
    renderDetail();
    // New recipients not sent: the list again from its start.
    if (old && notSent(old.campaign) !== notSent(c)) showFailures(c, '');
  }
  if (old) { old.row.replaceWith(row); return; }
  // Newest first, as the API lists them.
  const body = $('#campaigns tbody');
  const later = [...campaigns.values()].filter(other => other.row !== row && other.row.isConnected
    && (other.campaign.created_at < c.created_at || (other.campaign.created_at === c.created_at && other.campaign.id > c.id)));
  const next = later.sort((a, b) => b.campaign.created_at - a.campaign.created_at)[0];
  body.insertBefore(row, next ? next.row : null);
}

// A stream's name and, when it is split, each partition's length and
// pending entries: one lagging behind the others stands out.
function streamCell(s) {
  const td = cell(s.stream);
  if (s.partitions.length > 1) {
    const parts = document.createElement('small');
    parts.className = 'partitions';
    parts.textContent = ` ${s.partitions.length} partitions: `
      + s.partitions.map(p => `${p.length}/${p.pending}`).join(' · ');
    parts.title = s.partitions.map(p => `${p.stream}: ${p.length} entries, ${p.pending} pending, `
      + `${p.dead_letters} dead letters`).join('\n');
    td.append(parts);
  }
  return td;
}

// Each group's counts a moment ago, for their rates.
let countsBefore = new Map();
const COUNTED = ['handled', 'retried', 'dead_lettered'];
function showStreams(streams) {
  const rows = [], now = Date.now(), countsNow = new Map();
  for (const s of streams) {
    for (const g of s.groups.length ? s.groups : [null]) {
      const rate = {};
      if (g) {
        const key = s.stream + ' ' + g.group, before = countsBefore.get(key);
        countsNow.set(key, { at: now, ...g });
        for (const name of COUNTED) {
          rate[name] = before && now > before.at
            ? Math.round((g[name] - before[name]) / ((now - before.at) / 1000)) : '';
        }
      }
      const consumers = g ? g.consumer_details
        .map(c => `${c.name}: ${c.pending}, ${(c.idle_ms / 1000).toFixed(1)} s`).join('; ') : '';
      const tr = document.createElement('tr');
      tr.append(streamCell(s), cell(s.length, 'n'), cell(s.dead_letters, 'n'),
        cell(g ? g.group : '—'), cell(g ? g.pending : '', 'n'), cell(g ? (g.lag ?? '?') : '', 'n'),
        cell(g ? g.handled : '', 'n'), cell(rate.handled ?? '', 'n'),
        cell(g ? g.retried : '', 'n'), cell(rate.retried ?? '', 'n'),
        cell(g ? g.dead_lettered : '', 'n'), cell(rate.dead_lettered ?? '', 'n'), cell(consumers));
      rows.push(tr);
    }
  }
  countsBefore = countsNow;
  $('#streams tbody').replaceChildren(...rows);
  // Dead letters: the streams to choose from, and the list of the chosen
  // one again whenever its count moved.
  const select = $('#dead-stream');
  if (!select.options.length) {
    select.append(...streams.map(s => new Option(s.stream, s.stream)));
  }
  const chosen = streams.find(s => s.stream === select.value);
  if (chosen && chosen.dead_letters !== deadCount) { deadCount = chosen.dead_letters; loadDeadLetters(); }
}

// Dead letters hold recipients' addresses: in prod they need the token.
// A page at a time, the oldest first: "More" appends the next page.
let deadCount = null;
async function loadDeadLetters(after = '') {
  const stream = $('#dead-stream').value;
  const response = await guarded('/api/v1/dead-letters?stream=' + encodeURIComponent(stream)
    + '&after=' + encodeURIComponent(after));
  const answer = await response.json();
  if (!response.ok) { $('#dead-message').textContent = answer.error; return; }
  const letters = answer.dead_letters;
  $('#dead-message').textContent = letters.length || after ? '' : 'none';
  const more = $('#dead-more');
  more.hidden = !answer.next_after;
  more.onclick = () => loadDeadLetters(answer.next_after);
  const rows = letters.map(letter => {
    const tr = document.createElement('tr');
    const type = (letter.fields.find(([name]) => name === 'type') || [])[1] || '?';
    const button = document.createElement('button');
    button.textContent = 'replay';
    // The partition it is in: an id can recur in another partition.
    button.onclick = () => replay('/api/v1/dead-letters/replay?stream=' + encodeURIComponent(letter.stream)
      + '&id=' + encodeURIComponent(letter.id));
    const td = document.createElement('td'); td.append(button);
    // The original entry as it was in its stream (envelope fields, payload).
    const original = document.createElement('td');
    const entry = document.createElement('code');
    entry.className = 'original';
    entry.textContent = letter.fields.map(([name, value]) => `${name}=${value}`).join(' ');
    original.append(entry);
    tr.dataset.id = letter.id;
    tr.dataset.stream = letter.stream;
    // Under a split stream, the partition beside the id: two can share it.
    const where = letter.stream === stream ? '' : ' ' + letter.stream.slice(stream.length + 1);
    tr.append(cell(letter.id + where), cell(letter.group), cell(type), cell(letter.deliveries, 'n'), cell(letter.reason), original, td);
    return tr;
  });
  const body = $('#dead-letters tbody');
  if (after) body.append(...rows); else body.replaceChildren(...rows);
}
async function replay(url) {
  const response = await guarded(url, { method: 'POST' });
  if (!response.ok) { $('#dead-message').textContent = (await response.json()).error; return; }
  loadDeadLetters();
}
$('#dead-stream').onchange = () => { deadCount = null; loadDeadLetters(); };
$('#replay-all').onclick = () => replay('/api/v1/dead-letters/replay-all?stream='
  + encodeURIComponent($('#dead-stream').value));

const live = new EventSource('/api/v1/campaigns/events');
live.addEventListener('campaign', event => showCampaign(JSON.parse(event.data)));
live.addEventListener('streams', event => showStreams(JSON.parse(event.data)));
live.onopen = () => { $('#live').textContent = 'live'; };
live.onerror = () => { $('#live').textContent = 'reconnecting…'; };

async function created(response) {
  const answer = await response.json();
  if (!response.ok) {
    $('#form-error').textContent = answer.error || ('HTTP ' + response.status);
    return;
  }
  $('#form-error').textContent = '';
  $('#message').textContent = 'created ' + answer.id;
  showCampaign(answer);
}

// One Idempotency-Key per campaign to create: a second click, or a retry
// after an answer that never came, gets the same campaign back, never a
// second one; a new key once it is created.
const newKey = () => Array.from(crypto.getRandomValues(new Uint8Array(16)),
  byte => byte.toString(16).padStart(2, '0')).join('');
let creationKey = newKey();
$('#new').onsubmit = async event => {
  event.preventDefault();
  const sendAt = $('#send-at').value, audience = $('#audience').value.trim();
  const body = JSON.stringify({ name: $('#name').value, ...templates(),
    ...(sendAt ? { send_at: new Date(sendAt).toISOString() } : {}), ...(audience ? { audience } : {}) });
  const response = await guarded('/api/v1/campaigns', { method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': creationKey }, body });
  if (response.ok) creationKey = newKey();
  created(response);
};
// The form's templates as the API takes them: an HTML body when one is
// typed, and no text body when it is left empty beside it (derived).
function templates() {
  const html = $('#html').value, body = $('#body').value;
  return { subject: $('#subject').value, ...(body.trim() || !html.trim() ? { body } : {}),
    ...(html.trim() ? { html } : {}) };
}
// The email for the recipient given, or the sample recipient: its text,
// and its HTML in a sandboxed frame (no script, no form, no navigation of
// this page; the page's policy applies in it too, so nothing it names is
// fetched from elsewhere).
$('#preview').onclick = async () => {
  const request = templates();
  if ($('#preview-name').value) request.name = $('#preview-name').value;
  if ($('#preview-email').value) request.email = $('#preview-email').value;
  const response = await guarded('/api/v1/campaigns/preview',
    { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request) });
  const answer = await response.json();
  $('#form-error').textContent = response.ok ? '' : answer.error;
  $('#rendered').textContent = response.ok ? `Subject: ${answer.subject}\n\n${answer.body}` : '';
  const frame = $('#rendered-html');
  frame.hidden = !(response.ok && answer.html != null);
  frame.srcdoc = frame.hidden ? '' : answer.html;
};
$('#demo').onclick = async () => created(await guarded('/api/v1/campaign/create'));
