// Test sends (index.html's "send a test to"): the form's draft, or the
// open campaign, emailed now to the addresses typed (comma separated, 1 to
// 10), marked `[TEST] ` and counted in no campaign. Uses dashboard.js's
// `$`, `guarded`, `templates` and `detailId`.
const addresses = text => text.split(',').map(address => address.trim()).filter(Boolean);

async function testSend(url, request, message) {
  const response = await guarded(url, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify(request) });
  const answer = await response.json();
  message.classList.toggle('error', !response.ok);
  message.textContent = response.ok
    ? `test sent to ${request.to.join(', ')} (${answer.notification_ids.length} emails)`
    : answer.error || ('HTTP ' + response.status);
}

$('#test-send').onclick = () => {
  const request = { to: addresses($('#test-to').value), ...templates() };
  if ($('#preview-name').value) request.name = $('#preview-name').value;
  testSend('/api/v1/campaigns/test-send', request, $('#test-message'));
};
$('#detail-test-send').onclick = () => testSend(
  `/api/v1/campaigns/${encodeURIComponent(detailId)}/test-send`,
  { to: addresses($('#detail-test-to').value) }, $('#detail-test-message'));
