#!/usr/bin/env bash
# Scale benchmark: does hbcp stay small and fast with millions of files?
#   scripts/bench-scale.sh                  # sizes 100000 1000000 10000000 (or the largest that fits)
#   scripts/bench-scale.sh 100000 1000000   # given sizes
#   AZURITE_N=100000 scripts/bench-scale.sh 100000   # also N objects to and from Azurite
#   BENCH_DIR=/mnt/x HBCP=/path/hbcp GEN=/path/hbcp-gen SKIP_BUILD=1 ...
# For every size N: `hbcp-gen --preset scale` writes N empty files in an HBase-like layout
# (data/default/TABLE/REGION/FAMILY/HFILE: 20 regions a table, 2 families, 50 files each), kept
# between runs; then `hbcp plan` (files per minute, peak RSS) and `hbcp copy` with the default
# checksum verification (wall time, peak RSS) to a fresh local target. Peak RSS is
# /usr/bin/time's %M. A size whose source and copy would not fit in the free inodes or space
# of BENCH_DIR is cut to the largest that does, and the table says so. With AZURITE_N, the
# N-file set is copied to an Azurite container (started on AZURITE_PORT, default 10200) and then
# planned from it (a listing of N objects).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${BENCH_DIR:-/tmp/hbcp-scale}
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(100000 1000000 10000000)
if [ ! -x /usr/bin/time ]; then
  echo "installing GNU time (for peak RSS)" >&2
  apt-get update -qq && apt-get install -y -qq time >/dev/null
fi
if [ -z "${SKIP_BUILD:-}" ]; then cargo build --release -q -p hbcp -p hbcp-testkit; fi
HBCP=${HBCP:-$PWD/target/release/hbcp}
GEN=${GEN:-$PWD/target/release/hbcp-gen}
mkdir -p "$DIR"
echo "disk: $(df -h --output=avail "$DIR" | tail -1 | tr -d ' ') free, $(df --output=iavail "$DIR" | tail -1 | tr -d ' ') inodes free" >&2

# fit N: the largest size <= N whose source (if not there yet) and copy fit in the free inodes
# (files + 2% folders, each side) with 10% to spare.
fit() {
  local n=$1 free need
  free=$(df --output=iavail "$DIR" | tail -1 | tr -d ' ')
  if [ -f "$DIR/src-$n.done" ]; then need=$(( n * 102 / 100 )); else need=$(( n * 204 / 100 )); fi
  if [ "$need" -le $(( free * 9 / 10 )) ]; then echo "$n"; return; fi
  if [ -f "$DIR/src-$n.done" ]; then echo $(( free * 9 / 10 * 100 / 102 / 100000 * 100000 )); return; fi
  echo $(( free * 9 / 10 * 100 / 204 / 100000 * 100000 ))
}
gen() { # gen N: once; a set cut short by an interrupted run is written again
  if [ ! -f "$DIR/src-$1.done" ]; then
    rm -rf "${DIR:?}/src-$1"
    local t0=$SECONDS
    "$GEN" --out "$DIR/src-$1" --preset scale --files "$1" >&2
    echo "generated $1 files in $(( SECONDS - t0 ))s" >&2
    touch "$DIR/src-$1.done"
  fi
}
# measure NAME CMD...: runs CMD under /usr/bin/time; sets SECS and RSS_MIB; a failure stops
# the benchmark with its stderr.
measure() {
  local name=$1; shift
  if ! /usr/bin/time -f "%e %M" -o "$DIR/t.out" "$@" >/dev/null 2>"$DIR/$name.err"; then
    echo "FAILED: $*" >&2; tail -20 "$DIR/$name.err" >&2; exit 1
  fi
  read -r SECS RSS_KIB < "$DIR/t.out"
  RSS_MIB=$(( RSS_KIB / 1024 ))
}
per_min() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.2f M", n / (s > 0 ? s : 0.01) * 60 / 1e6 }'; }
fresh_target() { rm -rf "${DIR:?}/dst" "${DIR:?}/state" "$DIR/plan.zst"; sync; }

rows=()
for want in "${SIZES[@]}"; do
  n=$(fit "$want")
  note=""
  if [ "$n" -lt "$want" ]; then
    note=" (asked $want: source and copy of more do not fit in the free inodes)"
    echo "size $want does not fit; measuring $n" >&2
  fi
  [ "$n" -gt 0 ] || { echo "no room for any size" >&2; exit 1; }
  gen "$n"
  fresh_target
  echo "plan $n" >&2
  measure plan "$HBCP" plan "$DIR/src-$n" "$DIR/dst" --out "$DIR/plan.zst"
  plan_s=$SECS plan_rss=$RSS_MIB
  echo "copy $n" >&2
  measure copy "$HBCP" copy "$DIR/src-$n" "$DIR/dst" --progress none --state "$DIR/state"
  copy_s=$SECS copy_rss=$RSS_MIB
  copied=$(find "$DIR/dst" -type f -not -path '*/.hbcp/*' | wc -l)
  [ "$copied" -eq "$n" ] || { echo "copied $copied files, expected $n" >&2; exit 1; }
  rows+=("| local | $n$note | $plan_s s | $(per_min "$n" "$plan_s") | $plan_rss MiB | $copy_s s | $(per_min "$n" "$copy_s") | $copy_rss MiB |")
  echo "${rows[-1]}" >&2   # each row as soon as it is measured: a run stopped later keeps it
  fresh_target
done

if [ -n "${AZURITE_N:-}" ]; then
  n=$AZURITE_N
  gen "$n"
  port=${AZURITE_PORT:-10200}
  eval "$(PORT=$port bash scripts/azurite.sh start)"
  trap 'PORT=$port bash scripts/azurite.sh stop' EXIT
  blob="$HBCP_TEST_AZURITE/devstoreaccount1/scale$$/hbase"
  rm -rf "$DIR/state"
  echo "copy $n files to Azurite" >&2
  measure azcopy "$HBCP" copy "$DIR/src-$n" "$blob" --progress none --state "$DIR/state"
  up_s=$SECS up_rss=$RSS_MIB
  echo "plan from Azurite ($n objects listed)" >&2
  rm -f "$DIR/plan.zst"
  measure azplan "$HBCP" plan "$blob" "$DIR/dst" --out "$DIR/plan.zst"
  rows+=("| Azurite | $n | $SECS s (plan: listing $n objects) | $(per_min "$n" "$SECS") | $RSS_MIB MiB | $up_s s (local → Azurite) | $(per_min "$n" "$up_s") | $up_rss MiB |")
  rm -rf "$DIR/state" "$DIR/plan.zst"
fi

echo
echo "| source | files | plan | plan rate (files/min) | plan peak RSS | copy + verify | copy rate (files/min) | copy peak RSS |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
