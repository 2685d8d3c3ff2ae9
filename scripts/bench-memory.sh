#!/usr/bin/env bash
# --max-memory holds whatever the worker count and range size: copies a tree of large files up
# to Azurite and back down under one cap with growing --workers / --range-size, and prints the
# peak RSS of each run (from /usr/bin/time) against the cap.
#   scripts/bench-memory.sh [CAP]        # CAP default 256MiB; prints a markdown table
# Needs: npm (azurite), Debian's time.
set -euo pipefail
cd "$(dirname "$0")/.."
CAP=${1:-256MiB}
DIR=${BENCH_DIR:-/tmp/hbcp-memory}
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
cargo build --release -q -p hbcp
HBCP=$PWD/target/release/hbcp
PORT=${PORT:-10000}; export PORT
eval "$(bash scripts/azurite.sh start)"
trap 'bash scripts/azurite.sh stop' EXIT
mkdir -p "$DIR/src"
# 12 files of 64 MiB (768 MiB): every one is cut into ranges, so every worker can hold one.
for i in $(seq 1 12); do
  [ -f "$DIR/src/f$i" ] || head -c $((64 << 20)) /dev/urandom > "$DIR/src/f$i"
done
echo "| --workers | --range-size | --max-memory | direction | peak RSS | peak RSS / cap | buffer peak (report) |"
echo "|---|---|---|---|---|---|---|"
n=0
cap_kib=$(numfmt --from=iec-i --to-unit=1024 "${CAP%B}")
for wr in "32 8MiB" "128 16MiB" "256 32MiB"; do
  set -- $wr
  n=$((n + 1))
  url="http://127.0.0.1:$PORT/devstoreaccount1/mem$n$$/root"
  /usr/bin/time -f "%M" -o "$DIR/t.up" "$HBCP" copy "$DIR/src" "$url" --workers "$1" --range-size "$2" \
    --max-memory "$CAP" --progress none --report "$DIR/up.json" >/dev/null 2>"$DIR/up.log" || { cat "$DIR/up.log"; exit 1; }
  rm -rf "$DIR/down"
  /usr/bin/time -f "%M" -o "$DIR/t.down" "$HBCP" copy "$url" "$DIR/down" --workers "$1" --range-size "$2" \
    --max-memory "$CAP" --progress none --report "$DIR/down.json" >/dev/null 2>"$DIR/down.log" || { cat "$DIR/down.log"; exit 1; }
  rm -rf "$DIR/down"
  for d in up down; do
    rss=$(cat "$DIR/t.$d")
    bp=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['memory']['buffer_peak_bytes'] >> 20)" "$DIR/$d.json")
    awk -v w="$1" -v r="$2" -v c="$CAP" -v d="$d" -v rss="$rss" -v ck="$cap_kib" -v bp="$bp" \
      'BEGIN { printf "| %s | %s | %s | %s | %.0f MiB | %.2f | %d MiB |\n", w, r, c, d, rss/1024, rss/ck, bp }'
  done
done
