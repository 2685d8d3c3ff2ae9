#!/usr/bin/env bash
# Local-disk benchmark of hbcp against `cp -r SRC DST && sync` (the same durability as hbcp's
# syncfs group commit): same machine, same run, the tools alternating, medians of RUNS (default 3).
#   scripts/bench-local.sh                 # prints a markdown table for the README
#   BENCH_DIR=/mnt/x RUNS=5 scripts/bench-local.sh
#   CP_ONLY=1 scripts/bench-local.sh       # the cp and dd rows only (no hbcp binary needed)
#   HBCP=/path/to/hbcp SKIP_BUILD=1 ...    # use a given binary, build nothing
#   SETS=large scripts/bench-local.sh      # one set only (large or small)
# Sets (written by hbcp-gen, kept between runs): "large" = 4 × 512 MiB HFiles, "small" =
# 20,000 HFiles of 1–64 KiB. Nothing is dropped from the page cache: the source is warm for every
# tool alike; every target is fresh (deleted and synced before each run). Peak RSS is
# /usr/bin/time's %M. The disk's write limit is dd of 2 GiB with conv=fdatasync.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
DIR=${BENCH_DIR:-/tmp/hbcp-bench}
CP_ONLY=${CP_ONLY:-}
if [ ! -x /usr/bin/time ]; then
  echo "installing GNU time (for peak RSS)" >&2
  apt-get update -qq && apt-get install -y -qq time >/dev/null
fi
if [ -z "${SKIP_BUILD:-}" ]; then
  if [ -n "$CP_ONLY" ]; then cargo build --release -q -p hbcp-testkit
  else cargo build --release -q -p hbcp -p hbcp-testkit; fi
fi
HBCP=${HBCP:-$PWD/target/release/hbcp}
GEN=${GEN:-$PWD/target/release/hbcp-gen}
mkdir -p "$DIR"
gen() { # gen SET PRESET SEED: once; a set cut short by an interrupted run is written again
  if [ ! -f "$DIR/$1.done" ]; then
    rm -rf "${DIR:?}/$1"
    "$GEN" --out "$DIR/$1" --preset "$2" --seed "$3" >&2
    touch "$DIR/$1.done"
  fi
}
SETS=${SETS:-large small}
case " $SETS " in *" large "*) gen large large 1 ;; esac
case " $SETS " in *" small "*) gen small small-files 2 ;; esac

# run NAME CMD...: appends "seconds maxrss_kib" to $DIR/NAME.times; a failure (hbcp's exit code
# is 0 only when the copy is complete and verified) stops the benchmark with its stderr.
run() {
  local name=$1; shift
  rm -rf "${DIR:?}/dst"; sync
  if ! /usr/bin/time -f "%e %M" -o "$DIR/t.out" "$@" >/dev/null 2>"$DIR/err.out"; then
    echo "FAILED: $*" >&2; cat "$DIR/err.out" >&2; exit 1
  fi
  cat "$DIR/t.out" >> "$DIR/$name.times"
}
median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

tools="cp"
[ -n "$CP_ONLY" ] || tools="cp none full"
for set in $SETS; do
  rm -f "$DIR"/$set-*.times
  for i in $(seq "$RUNS"); do
    for tool in $tools; do
      echo "run $i/$RUNS: $set $tool" >&2
      case $tool in
        cp)   run "$set-cp" bash -c "cp -r '$DIR/$set' '$DIR/dst' && sync" ;;
        none) run "$set-none" "$HBCP" copy "$DIR/$set" "$DIR/dst" --verify none --progress none ;;
        full) run "$set-full" "$HBCP" copy "$DIR/$set" "$DIR/dst" --progress none ;;
      esac
    done
  done
done
rm -rf "${DIR:?}/dst"
# The disk's write limit: 2 GiB with fdatasync, median MB/s (dd's decimal MB, shown as MiB/s).
rm -f "$DIR/dd.times"
for _ in $(seq "$RUNS"); do
  LC_ALL=C dd if=/dev/zero of="$DIR/dd.bin" bs=16M count=128 conv=fdatasync 2>&1 \
    | awk '/copied/ {for (i = 1; i <= NF; i++) if ($i == "s,") s = $(i-1); print 2147483648 / s / 1048576}' >> "$DIR/dd.times"
  rm -f "$DIR/dd.bin"
done

bytes() { du -sb --apparent-size "$DIR/$1" | cut -f1; }
files() { find "$DIR/$1" -type f | wc -l; }
t() { [ -f "$DIR/$1.times" ] && cut -d' ' -f1 "$DIR/$1.times" | median || echo nan; }
rss() { [ -f "$DIR/$1.times" ] && cut -d' ' -f2 "$DIR/$1.times" | sort -n | tail -1 || echo nan; }
echo
echo "| set | cp -r && sync | hbcp --verify none | hbcp (default verify) | throughput vs cp (none / default) | peak RSS cp / hbcp none / hbcp default |"
echo "|---|---|---|---|---|---|"
for set in $SETS; do
  awk -v s="$set" -v b="$(bytes $set)" -v n="$(files $set)" -v tc="$(t $set-cp)" -v tn="$(t $set-none)" -v tf="$(t $set-full)" \
      -v rc="$(rss $set-cp)" -v rn="$(rss $set-none)" -v rf="$(rss $set-full)" 'BEGIN {
    mib = b / 1048576
    cell = "%.2f s, %.0f MiB/s, %.0f files/s"
    printf "| %s (%d files, %.0f MiB) | " cell " | ", s, n, mib, tc, mib/tc, n/tc
    if (tn == "nan") printf "– | – | – | %.0f MiB / – / – |\n", rc/1024
    else printf cell " | " cell " | %.2f× / %.2f× | %.0f / %.0f / %.0f MiB |\n", tn, mib/tn, n/tn, tf, mib/tf, n/tf, tc/tn, tc/tf, rc/1024, rn/1024, rf/1024
  }'
done
echo
awk -v d="$(median < "$DIR/dd.times")" 'BEGIN {printf "Disk write limit (dd 2 GiB, conv=fdatasync, median): %.0f MiB/s.\n", d}'
echo "Medians of $RUNS alternating runs on $(nproc) cores; source warm in the page cache; every target fresh; ratio = hbcp throughput / cp throughput."
