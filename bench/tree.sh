#!/usr/bin/env bash
# Makes a checkout of the service for `npm run bench -- --tree DIR` / `--compare DIR`: the files
# of one commit (or of the working tree as it is now, uncommitted changes included), with
# node_modules (a link to this checkout's when package-lock.json is the same, else its own
# `npm ci`) and its own dist/ (`npm run build`). Prints the directory.
#   bench/tree.sh [--compiled] [--current-trace] [COMMIT | --working] [DIR]
#     COMMIT     default HEAD (the unchanged tree, to measure edits against)
#     --working  the working tree now, tracked and untracked files (freezes a candidate that
#                others keep editing)
#     --compiled leave out the tree's bench/, so the bench runs its compiled
#                `bin/box-office.js serve` (the service alone, without the bench-only routes)
#     --current-trace  replace the tree's bench/trace.ts with this checkout's, so an older
#                commit's server is traced like the newest (autocommitted writes such as the
#                fast grant counted as round trips; statements per transaction, p50/p99)
#     DIR        default /tmp/box-office-tree-<commit>; replaced if it was made by this script
# Example: base=$(bench/tree.sh HEAD) && npm run bench -- --compare base="$base" --strategy batched
set -euo pipefail
compiled=0
current_trace=0
working=0
args=()
for arg in "$@"; do
  case $arg in
    --compiled) compiled=1 ;;
    --working) working=1 ;;
    --current-trace) current_trace=1 ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) args+=("$arg") ;;
  esac
done
repo=$(git rev-parse --show-toplevel)
if [ "$working" = 1 ]; then
  commit=$(git -C "$repo" rev-parse HEAD)
  marker="$commit+working-tree-$(date -u +%Y%m%dT%H%M%SZ)"
  dir=${args[0]:-/tmp/box-office-tree-working-${commit:0:12}}
else
  commit=$(git -C "$repo" rev-parse "${args[0]:-HEAD}")
  marker=$commit
  dir=${args[1]:-/tmp/box-office-tree-${commit:0:12}}
fi
if [ -e "$dir" ]; then
  [ -f "$dir/.bench-commit" ] || { echo "tree.sh: $dir exists and was not made by tree.sh; not replacing it" >&2; exit 2; }
  rm -rf "$dir"
fi
mkdir -p "$dir"
if [ "$working" = 1 ]; then
  (cd "$repo" && git ls-files -z -co --exclude-standard | tar --null -T - -cf -) | tar -x -C "$dir"
else
  git -C "$repo" archive "$commit" | tar -x -C "$dir"
fi
echo "$marker" > "$dir/.bench-commit"
[ "$compiled" = 1 ] && rm -rf "$dir/bench"
if [ "$current_trace" = 1 ] && [ -f "$dir/bench/trace.ts" ]; then
  cp "$repo/bench/trace.ts" "$dir/bench/trace.ts"
  echo "$marker (bench/trace.ts from $(git -C "$repo" rev-parse --short HEAD)'s checkout)" > "$dir/.bench-commit"
fi
if cmp -s "$repo/package-lock.json" "$dir/package-lock.json"; then
  ln -s "$repo/node_modules" "$dir/node_modules"
  built() { (cd "$dir" && npm run build >&2); }
else
  built() { (cd "$dir" && npm ci >&2); }
fi
if ! built; then
  # A commit that does not compile may still run through tsx; only the compiled path is lost.
  rm -rf "$dir/dist"
  if [ "$compiled" = 1 ] || [ ! -f "$dir/bench/server.ts" ]; then
    echo "tree.sh: the build failed in $dir, and the tree has no bench/server.ts to run instead" >&2
    exit 1
  fi
  echo "tree.sh: the build failed in $dir; the bench will run its bench/server.ts through tsx" >&2
fi
echo "$dir"
