#!/usr/bin/env bash
# Disaster-recovery benchmark: do `hbcp backup` and `hbcp restore` stay small with millions of
# files?
#   scripts/bench-dr.sh                    # size 1000000
#   RUNS=3 scripts/bench-dr.sh 1000000     # medians of 3 runs
#   BENCH_DIR=/mnt/x HBCP=/path/hbcp GEN=/path/hbcp-gen SKIP_BUILD=1 ...
#   IN_PLACE=1 BENCH_DIR=/mnt/big scripts/bench-dr.sh 10000000   # no working copy
# For every size N: the N empty files of bench-scale.sh (`hbcp-gen --preset scale`, an
# HBase-like layout, kept in BENCH_DIR, shared with bench-scale.sh and bench-sync.sh) are copied
# to a working root, backed up to a fresh local backup target (generation 1) and restored; the
# root is then changed by one round of HBase activity (`hbcp-gen --activity`: flushes, a
# compaction, a split, a schema change, a new table), backed up again (generation 2) and
# restored. Each restore goes to an empty folder, which must then equal its moment byte for
# byte (`diff -r`, an independent check, besides hbcp's own verification against the
# generation's checksums): generation 1 the generated set, generation 2 the working root.
# Reported: wall time and peak RSS
# (/usr/bin/time's %e and %M) of each step, the median of RUNS runs (default 1).
# BENCH_DIR holds everything: the generated set, the working root, the backup target, the
# restores and the state folders (a loop-mounted file system with enough inodes, for 10 M).
# Each job has its own state folder (`--state`): the backups one (the second backup is a run of
# the same job), each restore its own; hbcp refuses a state folder holding another job's
# journal.
# IN_PLACE=1 backs up the generated set itself instead of a copy of it (`cp -a` of 10 M files
# takes hours on a loaded machine, and a copy's inodes): the activity then changes the set,
# which the next run writes again.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${BENCH_DIR:-/tmp/hbcp-scale}
RUNS=${RUNS:-1}
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(1000000)
. scripts/lib.sh
bench_setup
mkdir -p "$DIR"
echo "disk: $(df -h --output=avail "$DIR" | tail -1 | tr -d ' ') free, $(df --output=iavail "$DIR" | tail -1 | tr -d ' ') inodes free" >&2

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
fresh() { rm -rf "${DIR:?}/dr-root" "${DIR:?}/dr-backup" "${DIR:?}/dr-restore" "${DIR:?}/dr-state"; sync; }

# backup_gen ID LINE: back up $root (generation ID), whose output must hold LINE.
backup_gen() {
  echo "dr $n, run $run: backup $1" >&2
  measure "dr-backup$1" "$HBCP" backup "$root" "$DIR/dr-backup" --no-wals-expected --progress none --state "$DIR/dr-state/backup"
  grep -q "$2" "$DIR/dr-backup$1.err" \
    || { echo "backup $1: no \"$2\" in its output" >&2; tail -5 "$DIR/dr-backup$1.err" >&2; exit 1; }
  echo "  $SECS s, $RSS_MIB MiB" >&2
}
# restore_gen ID TREE: restore generation ID into an empty folder, which must equal TREE byte for
# byte (diff, the restore's own completion manifest aside); then remove it.
restore_gen() {
  echo "dr $n, run $run: restore generation $1" >&2
  measure "dr-restore$1" "$HBCP" restore "$DIR/dr-backup" --generation "$1" "$DIR/dr-restore" --progress none --state "$DIR/dr-state/restore-$1"
  echo "  $SECS s, $RSS_MIB MiB" >&2
  diff -r -x .hbcp "$2" "$DIR/dr-restore" >&2 \
    || { echo "the restored generation $1 differs from $2" >&2; exit 1; }
  rm -rf "${DIR:?}/dr-restore"
}

rows=()
for n in "${SIZES[@]}"; do
  free=$(df --output=iavail "$DIR" | tail -1 | tr -d ' ')
  # The generated set, a working copy, the backup and a restore: about 4 × N inodes (3 × N in
  # place).
  need=$(( n * 420 / 100 )); [ -z "${IN_PLACE:-}" ] || need=$(( n * 320 / 100 ))
  [ "$need" -le $(( free * 9 / 10 )) ] || { echo "$n files: not enough free inodes ($free)" >&2; exit 1; }
  b1_s=() b1_rss=() b2_s=() b2_rss=() r1_s=() r1_rss=() r_s=() r_rss=()
  for run in $(seq 1 "$RUNS"); do
    fresh
    gen "$n"
    root=$DIR/src-$n
    if [ -z "${IN_PLACE:-}" ]; then root=$DIR/dr-root; cp -a "$DIR/src-$n" "$root"; fi
    backup_gen 1 "generation 1 written: $n files"
    b1_s+=("$SECS") b1_rss+=("$RSS_MIB")
    # The generated set, unchanged so far.
    restore_gen 1 "$DIR/src-$n"
    r1_s+=("$SECS") r1_rss+=("$RSS_MIB")
    # In place, the activity changes the generated set: written again by the next run.
    [ -z "${IN_PLACE:-}" ] || rm -f "$DIR/src-$n.done"
    "$GEN" --out "$root" --activity "$run" >&2
    backup_gen 2 "generation 2 written"
    b2_s+=("$SECS") b2_rss+=("$RSS_MIB")
    restore_gen 2 "$root"
    r_s+=("$SECS") r_rss+=("$RSS_MIB")
  done
  fresh
  rows+=("| $n | $RUNS | $(median "${b1_s[@]}") s | $(median "${b1_rss[@]}") MiB | $(median "${b2_s[@]}") s | $(median "${b2_rss[@]}") MiB | $(median "${r1_s[@]}") s | $(median "${r1_rss[@]}") MiB | $(median "${r_s[@]}") s | $(median "${r_rss[@]}") MiB |")
  echo "${rows[-1]}" >&2
done

echo
echo "| files | runs | first backup | its peak RSS | backup after activity | its peak RSS | restore of generation 1 | its peak RSS | restore of generation 2 | its peak RSS |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
