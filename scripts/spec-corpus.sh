#!/usr/bin/env bash
# Downloads the real-world OpenAPI documents listed in spec-corpus.list into a cache directory
# and prints that directory. The documents come from npm packages; each package tarball is checked
# against the SHA-256 in the list before anything is extracted from it. Documents already in the
# cache are not downloaded again.
#
# Usage: scripts/spec-corpus.sh [DIR]
#   DIR defaults to $MOCKFORGE_SPEC_CORPUS, else ~/.cache/mockforge/spec-corpus.
# Needs npm, tar and sha256sum.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
corpus=${1:-${MOCKFORGE_SPEC_CORPUS:-$HOME/.cache/mockforge/spec-corpus}}
downloads="$corpus/.downloads"
mkdir -p "$corpus" "$downloads"

declare -A checksum
while read -r kind name digest _; do
  [ "$kind" = package ] && checksum[$name]=$digest
done <"$here/spec-corpus.list"

# unpack PACKAGE: downloads and verifies one package once; prints its extracted directory.
unpack() {
  local package=$1 target
  target="$downloads/$(echo "$package" | tr '/@' '__')"
  if [ ! -d "$target/package" ]; then
    rm -rf "$target.tmp" && mkdir -p "$target.tmp"
    local tarball
    tarball=$(cd "$target.tmp" && npm pack "$package" --silent 2>/dev/null | tail -n 1)
    [ -n "$tarball" ] || { echo "error: npm pack $package failed" >&2; return 1; }
    if ! echo "${checksum[$package]}  $target.tmp/$tarball" | sha256sum --check --status; then
      echo "error: $package does not match its SHA-256 in spec-corpus.list" >&2
      return 1
    fi
    tar -xzf "$target.tmp/$tarball" -C "$target.tmp"
    rm -f "$target.tmp/$tarball"
    rm -rf "$target" && mv "$target.tmp" "$target"
  fi
  echo "$target"
}

while read -r kind package inner name; do
  [ "$kind" = document ] || continue
  [ -f "$corpus/$name" ] && continue
  source_dir=$(unpack "$package")
  cp "$source_dir/package/$inner" "$corpus/$name.tmp"
  mv "$corpus/$name.tmp" "$corpus/$name"
done <"$here/spec-corpus.list"

echo "$corpus"
