#!/usr/bin/env bash
# Printing URLs without their secrets. Sourced by start.sh; tested by
# tests/shell/redact.sh.

# A URL with the password of its user information (everything between the
# scheme's // and the last @, after the user name's colon) shown as ***.
redact_url() {
  local url="$1" scheme rest userinfo
  [[ "$url" == *://*@* ]] || {
    printf '%s' "$url"
    return
  }
  scheme="${url%%://*}"
  rest="${url#*://}"
  userinfo="${rest%@*}"
  if [[ "$userinfo" == *:* ]]; then
    printf '%s://%s:***@%s' "$scheme" "${userinfo%%:*}" "${rest##*@}"
  else
    printf '%s://***@%s' "$scheme" "${rest##*@}"
  fi
}
