#!/usr/bin/env bash
# Checks --max-bandwidth: for three rates, copy about 10 s worth of data and compare the measured
# rate (bytes sent / copy time, from the report) with the requested one.
#   scripts/bench-bandwidth.sh          # prints a markdown table
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${BENCH_DIR:-/tmp/hbcp-bw}
cargo build --release -q -p hbcp
HBCP=$PWD/target/release/hbcp
mkdir -p "$DIR"
echo "| requested | bytes | measured | measured / requested |"
echo "|---|---|---|---|"
for mib in 20 50 100; do
  rm -rf "$DIR/src" "$DIR/dst"; mkdir -p "$DIR/src"
  # 10 s at the requested rate, in 8 files (several workers share the limit).
  for i in $(seq 8); do head -c $((mib * 1024 * 1024 * 10 / 8)) /dev/urandom > "$DIR/src/f$i"; done
  "$HBCP" copy "$DIR/src" "$DIR/dst" --max-bandwidth "${mib}MiB" --verify none --progress none --report "$DIR/r.json" 2>/dev/null
  python3 - "$DIR/r.json" "$mib" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); want = float(sys.argv[2]) * 1048576
got = r["throughput_bytes_per_s"]
print(f"| {sys.argv[2]} MiB/s | {r['bytes_copied']} | {got/1048576:.1f} MiB/s | {got/want:.3f} |")
PY
done
rm -rf "$DIR"
