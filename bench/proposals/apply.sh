#!/usr/bin/env bash
# Makes a scratch copy of HEAD (bench/snapshot.sh) with proposed src/ patches applied, for
# `npm run bench -- --variant NAME=DIR[,STRATEGY]`. Prints the directory. COMMIT=sha picks the
# commit (default HEAD).
#   dir=$(bench/proposals/apply.sh NAME bench/proposals/1-*.patch bench/proposals/4-*.patch)
set -euo pipefail
name=$1
shift
patches=()
for patch in "$@"; do patches+=("$(realpath "$patch")"); done
repo=$(git rev-parse --show-toplevel)
dir=$(SNAPSHOT_DIR="/tmp/box-office-bench-variant-$name" "$repo/bench/snapshot.sh" "${COMMIT:-HEAD}")
for patch in "${patches[@]}"; do (cd "$dir" && git apply "$patch"); done
echo "$dir"
