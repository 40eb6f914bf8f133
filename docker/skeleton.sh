#!/bin/sh
# Writes the workspace's skeleton to $1: every Cargo.toml and Cargo.lock as
# they are, and every package's library and binaries as empty stubs. The
# services' Dockerfile builds the dependencies on this skeleton first, in a
# layer of their own: it stays cached until a manifest or the lock file
# changes, however often the sources do.
set -eu
out="${1:?usage: skeleton.sh DIR}"
mkdir -p "$out"
cp Cargo.toml Cargo.lock "$out/"
find . -name Cargo.toml -not -path './Cargo.toml' -not -path './target/*' | sort | while read -r manifest; do
  dir="${manifest%/Cargo.toml}"
  mkdir -p "$out/$dir"
  cp "$manifest" "$out/$dir/"
  [ ! -f "$dir/build.rs" ] || cp "$dir/build.rs" "$out/$dir/"
  if [ -f "$dir/src/lib.rs" ]; then
    mkdir -p "$out/$dir/src"
    : >"$out/$dir/src/lib.rs"
  fi
  # A package needs one target at least. Binaries under src/bin/ are
  # stubbed only in a package with neither src/lib.rs nor src/main.rs, so
  # that a new test tool there does not rebuild every dependency.
  mains="$dir/src/main.rs"
  [ -f "$dir/src/lib.rs" ] || [ -f "$dir/src/main.rs" ] || mains="$(ls "$dir"/src/bin/*.rs 2>/dev/null || true)"
  for main in $mains; do
    [ -f "$main" ] || continue
    mkdir -p "$out/$(dirname "$main")"
    echo 'fn main() {}' >"$out/$main"
  done
  # Targets a manifest names by path must exist, even when not built.
  sed -n 's/^[[:space:]]*path[[:space:]]*=[[:space:]]*"\([^"]*\.rs\)".*/\1/p' "$manifest" | while read -r path; do
    [ -f "$out/$dir/$path" ] && continue
    mkdir -p "$(dirname "$out/$dir/$path")"
    echo 'fn main() {}' >"$out/$dir/$path"
  done
done
