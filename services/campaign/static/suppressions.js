// The dashboard's suppression list (index.html), read from user-service,
// which owns it: the page names where (<meta name="user-service">), and
// user-service lets this page's origin (its PUBLIC_URL) read it. A page
// at a time, in the list's order; "More" appends the next. It holds
// addresses: in prod it needs the token (dashboard.js's guarded).
const userService = $('meta[name="user-service"]').content;
const suppressionsUrl = userService + '/api/v1/suppressions';
$('#suppressions-source').href = suppressionsUrl;
$('#suppressions-source').textContent = suppressionsUrl;

async function loadSuppressions(after = '') {
  const message = $('#suppressions-message');
  let response, answer;
  try {
    response = await guarded(suppressionsUrl + '?limit=100&after=' + encodeURIComponent(after));
    answer = await response.json();
  } catch (error) {
    // Unreachable, or not allowed to read it (this page's origin is not
    // user-service's PUBLIC_URL nor among its ALLOWED_ORIGINS).
    message.textContent = `cannot read ${suppressionsUrl} from this page: is user-service up, `
      + `and this page's origin (${location.origin}) its PUBLIC_URL or among its ALLOWED_ORIGINS?`;
    return;
  }
  if (!response.ok) { message.textContent = answer.error; return; }
  const entries = answer.suppressions;
  message.textContent = entries.length || after ? '' : 'none';
  const rows = entries.map(entry => {
    const tr = document.createElement('tr');
    tr.dataset.hash = entry.address_hash;
    const address = entry.address == null
      ? cell('erased (' + entry.address_hash.slice(0, 12) + '…)', 'erased')
      : cell(entry.address);
    tr.append(address, cell(entry.reason, 'reason'), cell(new Date(entry.changed_at).toLocaleString()),
      cell(entry.campaign_id ?? ''), cell(entry.detail ?? ''));
    return tr;
  });
  const body = $('#suppressions tbody');
  if (after) body.append(...rows); else body.replaceChildren(...rows);
  const more = $('#suppressions-more');
  more.hidden = !answer.next_after;
  more.onclick = () => loadSuppressions(answer.next_after);
}
$('#suppressions-refresh').onclick = () => loadSuppressions();
token.addEventListener('change', () => loadSuppressions());
loadSuppressions();
