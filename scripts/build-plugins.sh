#!/usr/bin/env bash
# Builds the example and test plugins in examples/plugins for wasm32-wasip2, in release mode,
# and copies each component to one folder as `{crate name with underscores}.wasm`.
#
# Prints the folder on its last line of standard output; tests read it from
# MOCKFORGE_PLUGIN_DIR. Usage:
#   scripts/build-plugins.sh [OUTPUT_DIR]
# OUTPUT_DIR defaults to $HOME/.cache/mockforge/plugins. The build uses its own target folder,
# MOCKFORGE_PLUGINS_TARGET_DIR, so it does not wait for the build lock of the workspace target
# folder. Its default is $HOME/.cache/mockforge-plugins-target/ followed by a hash of this
# checkout's path. Cargo records the WIT files in plugins/wit by absolute path, so two checkouts
# sharing one target folder can take the other's stale components as up to date.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
output="${1:-${HOME}/.cache/mockforge/plugins}"
checkout_hash="$(printf '%s' "$root" | sha256sum | cut -c 1-16)"
target_dir="${MOCKFORGE_PLUGINS_TARGET_DIR:-${HOME}/.cache/mockforge-plugins-target/${checkout_hash}}"

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2 >&2
fi

# The workspace's CARGO_TARGET_DIR must not leak into this separate workspace.
CARGO_TARGET_DIR="$target_dir" cargo build \
    --manifest-path "$root/examples/plugins/Cargo.toml" \
    --workspace --release --target wasm32-wasip2 >&2

mkdir -p "$output"
# Copy through a temporary name and rename, because tests in other processes may read a file
# while this script replaces it.
for built in "$target_dir"/wasm32-wasip2/release/*.wasm; do
    name="$(basename "$built")"
    cp "$built" "$output/.$name.$$"
    mv -f "$output/.$name.$$" "$output/$name"
done
echo "$output"
