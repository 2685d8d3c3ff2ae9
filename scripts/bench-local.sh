#!/usr/bin/env bash
# Local-disk benchmark of hbcp against `cp -r SRC DST && sync` (the same durability as hbcp's
# syncfs group commit), same machine, same run, alternating, medians of RUNS (default 3).
#   scripts/bench-local.sh            # prints a markdown table for the README
# Sets: 4 × 512 MiB HFiles ("large") and 20,000 HFiles of 1–64 KiB ("small"). Page cache is warm
# for the source (both tools read the same cached files); targets are fresh for every run.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
DIR=${BENCH_DIR:-/tmp/hbcp-bench}
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
cargo build --release -q -p hbcp -p hbcp-testkit
HBCP=$PWD/target/release/hbcp
GEN=$PWD/target/release/hbcp-gen
mkdir -p "$DIR"
[ -d "$DIR/large" ] || "$GEN" --out "$DIR/large" --preset large --seed 1 >/dev/null
[ -d "$DIR/small" ] || "$GEN" --out "$DIR/small" --preset small-files --seed 2 >/dev/null

# run NAME CMD... → appends "seconds maxrss_kib" to $DIR/NAME.times
run() {
  local name=$1; shift
  rm -rf "$DIR/dst"; sync
  /usr/bin/time -f "%e %M" -o "$DIR/t.out" "$@" >/dev/null 2>"$DIR/err.out" || { cat "$DIR/err.out"; exit 1; }
  cat "$DIR/t.out" >> "$DIR/$name.times"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

for set in large small; do
  rm -f "$DIR"/$set-*.times
  for _ in $(seq "$RUNS"); do
    run "$set-cp" bash -c "cp -r '$DIR/$set' '$DIR/dst' && sync"
    run "$set-none" "$HBCP" copy "$DIR/$set" "$DIR/dst" --verify none --progress none
    run "$set-full" "$HBCP" copy "$DIR/$set" "$DIR/dst" --progress none
  done
done
rm -rf "$DIR/dst"
# The machine's write limit: dd with fdatasync, medians too.
for _ in $(seq "$RUNS"); do
  dd if=/dev/zero of="$DIR/dd.bin" bs=16M count=128 conv=fdatasync 2>&1 | awk '/copied/ {print $(NF-1), $NF}' >> "$DIR/dd.times"
  rm -f "$DIR/dd.bin"
done

bytes() { du -sb "$DIR/$1" | cut -f1; }
t() { cut -d' ' -f1 "$DIR/$1.times" | median; }
rss() { cut -d' ' -f2 "$DIR/$1.times" | sort -n | tail -1; }
echo "| set | cp -r && sync | hbcp --verify none | ratio (throughput) | hbcp (verify checksum) | time ratio vs cp | peak RSS hbcp |"
echo "|---|---|---|---|---|---|---|"
for set in large small; do
  b=$(bytes $set); tc=$(t $set-cp); tn=$(t $set-none); tf=$(t $set-full)
  awk -v s=$set -v b="$b" -v tc="$tc" -v tn="$tn" -v tf="$tf" -v r1="$(rss $set-none)" -v r2="$(rss $set-full)" 'BEGIN {
    printf "| %s (%.0f MiB) | %.2f s (%.0f MiB/s) | %.2f s (%.0f MiB/s) | %.2f× | %.2f s | %.2f× | %.0f MiB |\n",
      s, b/1048576, tc, b/1048576/tc, tn, b/1048576/tn, tc/tn, tf, tf/tc, (r1>r2?r1:r2)/1024 }'
done
echo
echo "dd write limit (16 MiB × 128, conv=fdatasync), runs: $(tr '\n' ';' < "$DIR/dd.times")"
rm -f "$DIR/dd.times"
echo "medians of $RUNS alternating runs; source in page cache; every target fresh"
