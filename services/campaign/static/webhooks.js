// The dashboard's webhook endpoints (index.html's "Webhooks"): registered
// from the form with the kinds ticked (the new one's secret shown once),
// listed with what each received and what waits for it, refreshed every
// few seconds; a row's "replay" tries its dead events again, "remove"
// removes it. The API is behind the token in prod: dashboard.js's
// `guarded`, with its `$` and `cell`.
const webhookKinds = ['email.sent', 'email.failed', 'email.dead_lettered', 'email.suppressed',
  'email.bounced', 'email.complained', 'campaign.completed', 'campaign.cancelled'];
$('#webhook-kinds').replaceChildren(...webhookKinds.map(kind => {
  const label = document.createElement('label');
  const box = document.createElement('input');
  Object.assign(box, { type: 'checkbox', value: kind, checked: true });
  label.append(box, ' ' + kind + ' ');
  return label;
}));

async function webhookCall(path, init = {}) {
  const response = await guarded('/api/v1/webhooks' + path, init);
  const answer = response.status === 204 ? {} : await response.json();
  if (!response.ok) throw new Error(answer.error || ('HTTP ' + response.status));
  return answer;
}

function webhookButton(text, className, action) {
  const button = document.createElement('button');
  Object.assign(button, { textContent: text, className });
  button.onclick = async () => {
    try { await action(); await loadWebhooks(); } catch (error) { $('#webhooks-message').textContent = error.message; }
  };
  return button;
}

async function loadWebhooks() {
  let answer;
  try { answer = await webhookCall(''); } catch (error) { $('#webhooks-message').textContent = error.message; return; }
  $('#webhooks-message').textContent = answer.webhooks.length ? '' : 'none';
  $('#webhooks tbody').replaceChildren(...answer.webhooks.map(hook => {
    const tr = document.createElement('tr');
    tr.dataset.id = hook.id;
    const path = '/' + encodeURIComponent(hook.id);
    tr.append(cell(hook.url, 'url'), cell(hook.events.join(', ')), cell(hook.batch_size),
      cell(hook.delivered, 'delivered'), cell(hook.pending, 'pending'), cell(hook.dead, 'dead'),
      cell(hook.failures, 'failures'), cell(hook.last_error ?? '', 'error'), cell(''));
    tr.lastChild.append(webhookButton('replay', 'replay', () => webhookCall(path + '/replay', { method: 'POST' })),
      ' ', webhookButton('remove', 'remove', () => webhookCall(path, { method: 'DELETE' })));
    return tr;
  }));
}

$('#webhook-new').onsubmit = async (event) => {
  event.preventDefault();
  const events = [...document.querySelectorAll('#webhook-kinds input:checked')].map(box => box.value);
  const request = { url: $('#webhook-url').value, events, batch_size: Number($('#webhook-batch').value) };
  const shown = $('#webhook-secret');
  shown.hidden = false;
  try {
    const hook = await webhookCall('', { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify(request) });
    shown.classList.remove('error');
    shown.textContent = `registered; its signing secret, shown this once: ${hook.secret}`;
    await loadWebhooks();
  } catch (error) {
    shown.classList.add('error');
    shown.textContent = error.message;
  }
};
$('#webhooks-refresh').onclick = () => loadWebhooks();
token.addEventListener('change', () => loadWebhooks());
setInterval(loadWebhooks, 3000);
loadWebhooks();
