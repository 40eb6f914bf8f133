// The SMTP relays (index.html's #relays): each relay's address, weight,
// pool and rate, whether it takes mail (and why not), and what it sent,
// failed and handed over to another relay, every email-service instance
// added up. From the live channel's `relays` event (dashboard.js's
// `live`); hidden until an instance reported.
function showRelays(relays) {
  const rows = relays.map(relay => {
    const tr = document.createElement('tr');
    const state = relay.up ? 'up' : `down: ${relay.error ?? 'no answer'}`;
    tr.append(cell(relay.name), cell(relay.address),
      cell(relay.weight > 0 ? relay.weight : 'standby', 'n'), cell(relay.pool, 'n'),
      cell(relay.per_second > 0 ? `${relay.per_second}/s` : '—', 'n'), cell(state),
      cell(relay.sent, 'n'), cell(relay.failed, 'n'), cell(relay.failovers, 'n'));
    tr.className = relay.up ? '' : 'down';
    return tr;
  });
  $('#relays tbody').replaceChildren(...rows);
  $('#relays').hidden = false;
}

live.addEventListener('relays', event => showRelays(JSON.parse(event.data)));
