// The send limits (index.html's #limits): what email-service's shared rate
// and quotas are, how much of each quota is used, how long sends wait for
// their slots, and how fast emails go out now (comms:emails' handled
// entries a second). From the live channel's `limits` and `streams`
// events (dashboard.js's `live`); nothing is shown until a send was
// limited.
let limits = null, sending = null, emailsBefore = null;

function showLimits() {
  if (!limits) return;
  const parts = [];
  parts.push(limits.per_second > 0 ? `${limits.per_second} emails/s (burst ${limits.burst})` : 'no rate');
  if (limits.per_hour > 0) parts.push(`this hour ${limits.used_hour} of ${limits.per_hour}`);
  if (limits.per_day > 0) parts.push(`today ${limits.used_day} of ${limits.per_day}`);
  parts.push(`sending ${sending ?? '…'} emails/s`);
  const usedUp = (limits.per_hour > 0 && limits.used_hour >= limits.per_hour)
    || (limits.per_day > 0 && limits.used_day >= limits.per_day);
  const waiting = Date.now() - limits.at_ms < 10_000 && limits.wait_ms > 0;
  parts.push(usedUp ? 'a quota is used up: sends wait until it frees'
    : waiting ? `sends wait up to ${(limits.wait_ms / 1000).toFixed(1)} s for a slot` : 'no wait');
  $('#limits').textContent = 'Send limits: ' + parts.join(' · ');
}

live.addEventListener('limits', event => { limits = JSON.parse(event.data); showLimits(); });
live.addEventListener('streams', event => {
  const emails = JSON.parse(event.data).find(s => s.stream === 'comms:emails');
  const group = emails && emails.groups.find(g => g.group === 'email-service');
  if (!group) return;
  const now = Date.now();
  if (emailsBefore && now > emailsBefore.at) {
    sending = Math.round((group.handled - emailsBefore.handled) / ((now - emailsBefore.at) / 1000));
  }
  emailsBefore = { at: now, handled: group.handled };
  showLimits();
});
