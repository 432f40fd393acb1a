#!/usr/bin/env bash
# Copies the committed tree (HEAD, or the commit given) to a scratch directory, with this
# checkout's node_modules and bench/, so a benchmark measures exactly one commit while others
# keep editing the working tree. Prints the directory.
#   dir=$(bench/snapshot.sh) && cd "$dir" && npm run bench -- ...
set -euo pipefail
repo=$(git rev-parse --show-toplevel)
commit=$(git -C "$repo" rev-parse "${1:-HEAD}")
dir=${SNAPSHOT_DIR:-/tmp/box-office-bench-${commit:0:12}}
rm -rf "$dir"
mkdir -p "$dir"
git -C "$repo" archive "$commit" | tar -x -C "$dir"
ln -s "$repo/node_modules" "$dir/node_modules"
rm -rf "$dir/bench"
cp -r "$repo/bench" "$dir/bench"
echo "$commit" > "$dir/.bench-commit"
echo "$dir"
