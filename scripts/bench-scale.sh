#!/usr/bin/env bash
# Scale benchmark: does hbcp stay small and fast with millions of files?
#   scripts/bench-scale.sh                  # sizes 100000 1000000 10000000 (or the largest that fits)
#   scripts/bench-scale.sh 100000 1000000   # given sizes
#   AZURITE_N=100000 scripts/bench-scale.sh 100000   # also N objects to and from Azurite
#   BENCH_DIR=/mnt/x HBCP=/path/hbcp GEN=/path/hbcp-gen SKIP_BUILD=1 ...
#   SCALE_FS=loop scripts/bench-scale.sh 10000000   # on a fresh ext4 loop image (needs root)
# For every size N: `hbcp-gen --preset scale` writes N empty files in an HBase-like layout
# (data/default/TABLE/REGION/FAMILY/HFILE: 20 regions a table, 2 families, 50 files each), kept
# between runs; then `hbcp plan` (files per minute, peak RSS) and `hbcp copy` with the default
# checksum verification (wall time, peak RSS) to a fresh local target. Peak RSS is
# /usr/bin/time's %M. A size whose source and copy would not fit in the free inodes or space
# of BENCH_DIR is cut to the largest that does, and the table says so. With AZURITE_N, the
# N-file set is copied to an Azurite container (started on AZURITE_PORT, default 10200) and then
# planned from it (a listing of N objects).
# With SCALE_FS=loop (root only) the benchmark runs on a sparse ext4 image made for it, so that
# the root file system's inode count does not cut the size: the image (SCALE_IMG, default
# /var/tmp/hbcp-scale.img) gets inodes for two copies of the largest size (`mkfs.ext4 -N`), is
# mounted with `mount -o loop` on a temporary folder that becomes BENCH_DIR, and is unmounted and
# deleted at exit (KEEP_IMG=1 keeps it, and a kept image is mounted again as it is, with its
# generated sets, by the next run). Its size grows with what is written (inode tables, folders,
# the journal): about 0.7 GB per million files, both copies, plus 2 GiB.
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
cleanups=()
cleanup() { local c; for c in "${cleanups[@]}"; do eval "$c" || true; done; }
trap cleanup EXIT
if [ "${SCALE_FS:-}" = loop ]; then
  [ "$(id -u)" -eq 0 ] || { echo "SCALE_FS=loop needs root (mkfs.ext4, mount -o loop)" >&2; exit 2; }
  IMG=${SCALE_IMG:-/var/tmp/hbcp-scale.img}
  max=0; for s in "${SIZES[@]}"; do [ "$s" -gt "$max" ] && max=$s; done
  # inodes: two copies of the largest set and its folders (2% of the files), the 10% that fit
  # keeps free, and some to spare.
  # ext4 holds at most one inode per 4 KiB block, so the image's nominal size is inodes x 4 KiB;
  # what it grows to on disk (grow) is its 256-byte inodes, a 4 KiB block per folder, the
  # journal and 1 GiB of room.
  inodes=$(( max * 204 / 100 * 100 / 88 + 100000 ))
  bytes=$(( inodes * 4096 ))
  grow=$(( inodes * 256 + max * 4 / 100 * 4096 + (2 << 30) ))
  if [ ! -f "$IMG" ]; then
    avail=$(df --output=avail -B1 "$(dirname "$IMG")" | tail -1 | tr -d ' ')
    if [ "$grow" -gt $(( avail * 9 / 10 )) ]; then
      echo "SCALE_FS=loop: an image for $max files may grow to $(( grow >> 30 )) GiB; $(( avail >> 30 )) GiB free at $(dirname "$IMG")" >&2
      exit 2
    fi
    truncate -s "$bytes" "$IMG"
    # the inode tables are left to be written as they are used (no lazy init thread at mount),
    # so the sparse image only grows with the files written into it
    mkfs.ext4 -q -F -N "$inodes" -m 0 -E lazy_itable_init=1,lazy_journal_init=1 "$IMG"
  fi
  [ -n "${KEEP_IMG:-}" ] || cleanups+=("rm -f '$IMG'")
  DIR=$(mktemp -d /tmp/hbcp-scale-mnt.XXXXXX)
  mount -o loop,noinit_itable "$IMG" "$DIR"
  cleanups=("umount '$DIR' && rmdir '$DIR'" "${cleanups[@]}")
  echo "SCALE_FS=loop: $IMG ($(( bytes >> 30 )) GiB sparse, up to $(( grow >> 30 )) GiB on disk, $inodes inodes) on $DIR" >&2
fi
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
  # a loop image deleted at exit takes the last target with it, faster than removing its files
  [ "$want" = "${SIZES[-1]}" ] && [ "${SCALE_FS:-}" = loop ] && [ -z "${KEEP_IMG:-}" ] || fresh_target
done

if [ -n "${AZURITE_N:-}" ]; then
  n=$AZURITE_N
  gen "$n"
  port=${AZURITE_PORT:-10200}
  eval "$(PORT=$port bash scripts/azurite.sh start)"
  cleanups=("PORT=$port bash scripts/azurite.sh stop" "${cleanups[@]}")
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
