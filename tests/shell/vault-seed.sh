#!/usr/bin/env bash
# scripts/vault-seed.sh's DKIM keys and relays, through a stand-in for the bao CLI
# that keeps what each `kv put` was given: dev gets an Ed25519 key that
# openssl made, intact in its JSON (line breaks and all) with its
# selector; prod, without a key, gets no dkim_* key at all; a given key is
# written as given, and an empty one turns dev's signing off; a relay list
# is written as given, its passwords in no log. Run by
# test.sh, under dash when it is there (the openbao image's sh is no bash).
set -euo pipefail
cd "$(dirname "$0")/../.."

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat >"$work/bao" <<'BAO'
#!/bin/sh
# status, secrets enable: fine; kv put -mount=M PATH -: keep standard input.
[ "$1" = kv ] || exit 0
path="$4"
mkdir -p "$SEED_OUT/$(dirname "$path")"
cat >"$SEED_OUT/$path.json"
BAO
chmod +x "$work/bao"
shell="$(command -v dash || command -v sh)"

failures=0
fail() {
  echo "tests/shell/vault-seed.sh: $*" >&2
  failures=$((failures + 1))
}

# seed OUT [NAME=VALUE...]: runs the seed into OUT with these settings.
seed() {
  local out="$work/$1"
  shift
  mkdir -p "$out"
  env "$@" SEED_OUT="$out" BAO="$work/bao" SEED_WAIT=1 "$shell" scripts/vault-seed.sh >"$out/log"
}

# field OUT ENV KEY: the value of KEY in ENV's email-service secret, or
# nothing when it is absent.
field() {
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], ""), end="")' \
    "$work/$1/comms/$2/email-service.json" "$3"
}

seed made
key="$(field made dev dkim_private_key)"
case "$key" in
  "-----BEGIN PRIVATE KEY-----"*"-----END PRIVATE KEY-----") ;;
  *) fail "dev's key is not a PEM: $(printf '%s' "$key" | head -c 40)" ;;
esac
printf '%s\n' "$key" | openssl pkey -noout 2>/dev/null || fail "openssl cannot read dev's key back"
printf '%s\n' "$key" | openssl pkey -text -noout 2>/dev/null | grep -q ED25519 || fail "dev's key is not Ed25519"
[ "$(field made dev dkim_selector)" = comms-dev ] || fail "dev's selector: $(field made dev dkim_selector)"
for name in dkim_private_key dkim_selector dkim_domain dkim_algorithm; do
  [ -z "$(field made prod "$name")" ] || fail "prod has $name without a key"
done
grep -q "BEGIN" "$work/made/log" && fail "the log shows the key"

given="-----BEGIN PRIVATE KEY-----
Z2l2ZW4=
-----END PRIVATE KEY-----"
seed given SEED_ENVS=prod PROD_DKIM_PRIVATE_KEY="$given" PROD_DKIM_SELECTOR=s2026 PROD_DKIM_DOMAIN=example.org
[ "$(field given prod dkim_private_key)" = "$given" ] || fail "a given key is not written as given"
[ "$(field given prod dkim_domain)" = example.org ] || fail "prod's domain: $(field given prod dkim_domain)"

relays="smtp://AKIA:s3cr%2Ct@email-smtp.eu-west-1.amazonaws.com:587?name=ses&tls=starttls&rate=14"
seed relays SEED_ENVS=prod PROD_EMAIL_RELAYS="$relays"
[ "$(field relays prod relays)" = "$relays" ] || fail "prod's relays: $(field relays prod relays)"
grep -q "s3cr" "$work/relays/log" && fail "the log shows a relay's password"
[ -z "$(field made dev relays)" ] || fail "dev has relays it was not given"

seed off SEED_ENVS=dev DEV_DKIM_PRIVATE_KEY=
[ -z "$(field off dev dkim_private_key)$(field off dev dkim_selector)" ] || fail "an empty key still signs"

if [ "$failures" -gt 0 ]; then
  echo "tests/shell/vault-seed.sh: $failures failed" >&2
  exit 1
fi
echo "tests/shell/vault-seed.sh: ok"
