#!/usr/bin/env bash
# The checks of bench/chaos.sh at the end of its run: functions sourced by
# it, which read its state (the work directory, the services' ports, the
# streams).
# shellcheck disable=SC2154 # set by bench/chaos.sh and bench/lib.sh

# Dead letters and idle groups: every group of every stream with nothing
# pending and nothing left to read (bounded wait: the poison entries are
# dead-lettered as they are read). Left to read means a last-delivered id
# short of the stream's last id: Redis's own `lag` counter is not exact
# after a restart from the AOF.
groups_busy() {
  local stream last
  for stream in "${every_stored_stream[@]}"; do
    last="$(rcli XINFO STREAM "$stream" 2>/dev/null | awk 'prev == "last-generated-id" { print } { prev = $0 }')"
    rcli XINFO GROUPS "$stream" 2>/dev/null |
      awk -v s="$stream" -v last="$last" 'prev == "name" { n = $0 } prev == "pending" { p = $0 }
        prev == "last-delivered-id" { if (p != 0 || $0 != last) print s, n, "pending", p, "delivered up to", $0, "of", last }
        { prev = $0 }'
  done
}

# The Message-IDs of each campaign's notifications (notification-service's
# export), and of those, the ones received.
campaign_ids() {
  curl -fsS --max-time 60 "http://127.0.0.1:${port[notification-service]}/api/v1/campaigns/$1/export" |
    tail -n +2 | cut -d, -f1 | sed 's/.*/<&@comms>/' | sort -u
}
received_of() { campaign_ids "$1" | comm -12 - "$workdir/unique-ids.txt" | grep -c . || true; }
