// The new campaign's audience (index.html's #audience): as it is typed,
// user-service says how many users the filter selects, or what is wrong
// with it and where (the same parser campaign-service checks it with at
// creation). Empty: every user. Read from user-service as the suppression
// list is (suppressions.js: its URL in <meta name="user-service">).
const countUrl = $('meta[name="user-service"]').content + '/api/v1/users/count';
let countAsked = 0;

async function showAudienceCount() {
  const filter = $('#audience').value.trim();
  const asked = ++countAsked;
  const shown = $('#audience-count');
  let response, answer;
  try {
    response = await guarded(countUrl + (filter ? '?filter=' + encodeURIComponent(filter) : ''));
    answer = await response.json();
  } catch (error) {
    if (asked === countAsked) shown.textContent = `cannot ask ${countUrl} for the count`;
    return;
  }
  // A later keystroke's answer wins, whatever order they come in.
  if (asked !== countAsked) return;
  shown.classList.toggle('error', !response.ok);
  shown.textContent = !response.ok ? answer.error
    : `${answer.count} ${answer.count === 1 ? 'user' : 'users'}${filter ? '' : ' (everyone)'}`;
}

let countTimer;
$('#audience').addEventListener('input', () => {
  clearTimeout(countTimer);
  countTimer = setTimeout(showAudienceCount, 250);
});
showAudienceCount();
