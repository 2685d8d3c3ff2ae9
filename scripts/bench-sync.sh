#!/usr/bin/env bash
# Sync benchmark: does `hbcp sync` stay small with millions of files?
#   scripts/bench-sync.sh                  # sizes 200000 1000000
#   scripts/bench-sync.sh 1000000          # given sizes
#   RUNS=3 scripts/bench-sync.sh 200000    # medians of 3 runs
#   BENCH_DIR=/mnt/x HBCP=/path/hbcp GEN=/path/hbcp-gen SKIP_BUILD=1 ...
# For every size N: the N empty files of bench-scale.sh (`hbcp-gen --preset scale`, an
# HBase-like layout, kept in BENCH_DIR between runs, shared with bench-scale.sh) are synced to a
# fresh local target twice: the first cycle lists the empty target and copies and verifies every
# file (checksum, the default); the second, with nothing changed, starts from the completion
# manifest the first wrote (its target index) and keeps every file (checked by size). Reported:
# wall time and peak RSS (/usr/bin/time's %e and %M) of each, the median of RUNS runs (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${BENCH_DIR:-/tmp/hbcp-scale}
RUNS=${RUNS:-1}
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(200000 1000000)
. scripts/lib.sh
bench_setup
mkdir -p "$DIR"
echo "disk: $(df -h --output=avail "$DIR" | tail -1 | tr -d ' ') free, $(df --output=iavail "$DIR" | tail -1 | tr -d ' ') inodes free" >&2

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
fresh_target() { rm -rf "${DIR:?}/sync-dst" "${DIR:?}/sync-state"; sync; }
# written N NAME: the files the cycle of $DIR/NAME.err wrote, checked against N
written() {
  local got
  got=$(sed -n 's/^hbcp: sync cycle 1: \([0-9]*\) files written.*/\1/p' "$DIR/$2.err")
  [ "$got" = "$1" ] || { echo "$2: $got files written, expected $1" >&2; tail -5 "$DIR/$2.err" >&2; exit 1; }
}

rows=()
for n in "${SIZES[@]}"; do
  free=$(df --output=iavail "$DIR" | tail -1 | tr -d ' ')
  [ $(( n * 204 / 100 )) -le $(( free * 9 / 10 )) ] || { echo "$n files: not enough free inodes ($free)" >&2; exit 1; }
  gen "$n"
  full_s=() full_rss=() again_s=() again_rss=()
  for run in $(seq 1 "$RUNS"); do
    fresh_target
    echo "sync $n, run $run: first cycle" >&2
    measure sync-full "$HBCP" sync "$DIR/src-$n" "$DIR/sync-dst" --progress none --state "$DIR/sync-state"
    written "$n" sync-full
    full_s+=("$SECS") full_rss+=("$RSS_MIB")
    echo "  $SECS s, $RSS_MIB MiB" >&2
    echo "sync $n, run $run: no change" >&2
    measure sync-again "$HBCP" sync "$DIR/src-$n" "$DIR/sync-dst" --progress none --state "$DIR/sync-state"
    written 0 sync-again
    grep -q "0 files written (0 B), $n unchanged" "$DIR/sync-again.err" \
      || { echo "the second cycle did not keep all $n files" >&2; tail -5 "$DIR/sync-again.err" >&2; exit 1; }
    again_s+=("$SECS") again_rss+=("$RSS_MIB")
    echo "  $SECS s, $RSS_MIB MiB" >&2
  done
  fresh_target
  rows+=("| $n | $RUNS | $(median "${full_s[@]}") s | $(median "${full_rss[@]}") MiB | $(median "${again_s[@]}") s | $(median "${again_rss[@]}") MiB |")
  echo "${rows[-1]}" >&2
done

echo
echo "| files | runs | first sync (copy + verify) | its peak RSS | no-change sync | its peak RSS |"
echo "| --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
