#!/usr/bin/env bash
# Checks --max-bandwidth: for four rates (one in bits: 8Mbps is 1 MB/s, networking's meaning),
# copy about 14 s worth of data (8 files, so that
# several workers share the limit) and compare with the requested rate (a) the rate over a
# 10 s window of the report's timeline, starting 2 s after the first byte (what the limiter
# promises: within 5% over 10 s) and (b) bytes over the whole copy time (start-up, commits
# and sync included). Medians of RUNS (default 3).
#   scripts/bench-bandwidth.sh          # prints a markdown table
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${BENCH_DIR:-/tmp/hbcp-bw}
RUNS=${RUNS:-3}
cargo build --release -q -p hbcp
HBCP=$PWD/target/release/hbcp
mkdir -p "$DIR"
echo "| requested | bytes | 10 s window (median) | window / requested | whole copy (median) | whole / requested |"
echo "|---|---|---|---|---|---|"
# RATE:BYTES_PER_S
for spec in 8Mbps:1000000 20MiB/s:20971520 50MiB/s:52428800 100MiB/s:104857600; do
  rate=${spec%%:*} bps=${spec##*:}
  rm -rf "$DIR/src"; mkdir -p "$DIR/src"
  for i in $(seq 8); do head -c $((bps * 14 / 8)) /dev/urandom > "$DIR/src/f$i"; done
  rm -f "$DIR"/r*.json
  for run in $(seq "$RUNS"); do
    rm -rf "$DIR/dst"
    "$HBCP" copy "$DIR/src" "$DIR/dst" --max-bandwidth "$rate" --verify none --progress none --report "$DIR/r$run.json" 2>/dev/null
  done
  python3 - "$rate" "$bps" "$DIR"/r*.json <<'PY'
import json, statistics, sys
want = float(sys.argv[2])
def at(tl, t):
    # Bytes copied at time t, interpolated between the timeline's samples.
    for a, b in zip(tl, tl[1:]):
        if a["t"] <= t <= b["t"]:
            return a["bytes"] + (b["bytes"] - a["bytes"]) * (t - a["t"]) / (b["t"] - a["t"])
    raise SystemExit(f"timeline does not cover t={t:.1f} s")
win, whole, size = [], [], 0
for f in sys.argv[3:]:
    r = json.load(open(f))
    tl = r["timeline"]
    t0 = next(s["t"] for s in tl if s["bytes"] > 0) + 2.0
    win.append((at(tl, t0 + 10.0) - at(tl, t0)) / 10.0)
    whole.append(r["throughput_bytes_per_s"])
    size = r["bytes_copied"]
w, h = statistics.median(win), statistics.median(whole)
print(f"| {sys.argv[1]} ({want/1e6:.2f} MB/s) | {size} | {w/1e6:.2f} MB/s | {w/want:.3f} | {h/1e6:.2f} MB/s | {h/want:.3f} |")
PY
done
rm -rf "$DIR"
