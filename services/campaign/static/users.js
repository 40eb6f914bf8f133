// Users (index.html's "Users"): a CSV or NDJSON file imported into
// user-service, which keeps the users (<meta name="user-service">; it takes
// imports from this page's origin, its PUBLIC_URL). The file is sent as it
// is read, whatever its size; the answer counts what was created, updated
// and unchanged, and names every rejected row by line and reason.
// Uses dashboard.js's `$`, `cell` and `guarded`, and audience.js's count.
const importUrl = $('meta[name="user-service"]').content + '/api/v1/users/import';
$('#import-source').href = importUrl;
$('#import-source').textContent = importUrl;

/// The import's format for `file`: NDJSON by its name, else CSV.
const importFormat = file => /\.(ndjson|jsonl)$/i.test(file.name) ? 'application/x-ndjson' : 'text/csv';

function showImported(file, answer) {
  const listed = answer.rejections.length;
  $('#import-message').textContent = `${file.name}: ${answer.created} created, ${answer.updated} updated, `
    + `${answer.unchanged} unchanged, ${answer.rejected} rejected`
    + (answer.rejected > listed ? ` (the first ${listed} listed below)` : '');
  const rows = answer.rejections.map(rejection => {
    const tr = document.createElement('tr');
    tr.append(cell(rejection.line), cell(rejection.reason));
    return tr;
  });
  $('#import-rejections tbody').replaceChildren(...rows);
  $('#import-rejections').hidden = rows.length === 0;
}

$('#import').onclick = async () => {
  const file = $('#import-file').files[0];
  const message = $('#import-message');
  message.classList.remove('error');
  $('#import-rejections').hidden = true;
  if (!file) { message.textContent = 'choose a CSV or NDJSON file first'; return; }
  message.textContent = `importing ${file.name}…`;
  let response, answer;
  try {
    response = await guarded(importUrl, { method: 'POST', headers: { 'content-type': importFormat(file) }, body: file });
    answer = await response.json();
  } catch (error) {
    message.classList.add('error');
    message.textContent = `cannot import into ${importUrl} from this page: is user-service up, `
      + `and this page's origin (${location.origin}) its PUBLIC_URL or among its ALLOWED_ORIGINS?`;
    return;
  }
  if (!response.ok) {
    message.classList.add('error');
    message.textContent = answer.error;
    return;
  }
  showImported(file, answer);
  showAudienceCount();
};
