#!/usr/bin/env bash
# Refreshes the OpenAPI reference's script that every service serves at
# /api-docs/scalar.js (crates/servicekit/src/openapi/ui.rs embeds it): the
# standalone bundle of npm's @scalar/api-reference, pinned to one version,
# kept byte for byte as the registry's package holds it, with its version
# and SHA-256 beside it.
#
#   scripts/refresh-scalar.sh 1.76.0    takes that version
#   scripts/refresh-scalar.sh --check   checks the bundle against its SHA-256
set -euo pipefail
dir="$(cd "$(dirname "$0")/.." && pwd)/crates/servicekit/assets/scalar"
if [ "${1:-}" = "--check" ]; then
  (cd "$dir" && sha256sum --check --quiet SHA256SUMS)
  echo "scalar $(cat "$dir/VERSION"): standalone.js matches SHA256SUMS"
  exit 0
fi
version="${1:?usage: refresh-scalar.sh VERSION | --check}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "@scalar/api-reference@$version" >/dev/null)
tar -xzf "$work"/scalar-api-reference-"$version".tgz -C "$work"
cp "$work/package/dist/browser/standalone.js" "$dir/standalone.js"
echo "$version" >"$dir/VERSION"
(cd "$dir" && sha256sum standalone.js >SHA256SUMS)
echo "scalar $version: $(cut -d' ' -f1 "$dir/SHA256SUMS")"
