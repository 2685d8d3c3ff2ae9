#!/usr/bin/env bash
# Memory of an HBase selection at scale: does `--table` stay small on a table of millions of
# files?
#   scripts/bench-view.sh                 # one table of 1,000,000 files
#   scripts/bench-view.sh 100000 1000000  # given sizes
#   RUNS=3 BEFORE=/path/old-hbcp BENCH_DIR=/mnt/x SKIP_BUILD=1 scripts/bench-view.sh ...
# For every size N: a root with one table `default:big` of N empty HFiles (100 regions, one
# family, each region with its .regioninfo-less folder) beside hbase.version, written once and
# kept between runs; then `hbcp plan SRC DST --table default:big` (the view is resolved and the
# plan written) and `hbcp verify SRC SRC --table default:big --verify size` (the view listed
# and every file checked), RUNS times each (default 3), printing the median wall time and peak
# RSS (/usr/bin/time's %M). With BEFORE, the same runs of another hbcp binary follow in the
# same table (to compare builds on the same set).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${BENCH_DIR:-/tmp/hbcp-view}
RUNS=${RUNS:-3}
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(1000000)
if [ ! -x /usr/bin/time ]; then
  echo "installing GNU time (for peak RSS)" >&2
  apt-get update -qq && apt-get install -y -qq time >/dev/null
fi
if [ -z "${SKIP_BUILD:-}" ]; then cargo build --release -q -p hbcp; fi
HBCP=${HBCP:-$PWD/target/release/hbcp}
mkdir -p "$DIR"

gen() { # gen N: one table of N empty HFiles, once
  local n=$1 root="$DIR/root-$1"
  [ -f "$root/.complete" ] && return 0
  rm -rf "$root"
  python3 - "$root" "$n" <<'EOF'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
regions = 100
os.makedirs(root)
with open(os.path.join(root, "hbase.version"), "wb") as f:
    f.write(b"PBUF\x0a\x018")  # FSVersion "8", as HBase 2.x writes it
t = os.path.join(root, "data/default/big")
os.makedirs(os.path.join(t, ".tabledesc"))
open(os.path.join(t, ".tabledesc/.tableinfo.0000000001"), "wb").close()
for r in range(regions):
    d = os.path.join(t, "%032x" % (r + 1), "cf")
    os.makedirs(d)
    for i in range(r, n, regions):
        os.close(os.open(os.path.join(d, "%032x" % (i * 7919 + 1)), os.O_CREAT | os.O_WRONLY, 0o644))
EOF
  touch "$root/.complete"
}

measure() { # measure NAME CMD...: sets SECS and RSS_MIB
  local name=$1; shift
  if ! /usr/bin/time -f "%e %M" -o "$DIR/t.out" "$@" >"$DIR/$name.out" 2>"$DIR/$name.err"; then
    echo "FAILED: $*" >&2; tail -20 "$DIR/$name.err" >&2; exit 1
  fi
  read -r SECS RSS_KIB < "$DIR/t.out"
  RSS_MIB=$(( RSS_KIB / 1024 ))
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

runs() { # runs LABEL BIN N: prints one table row per command
  local label=$1 bin=$2 n=$3 root="$DIR/root-$3" i
  local -a ps pr vs vr
  for i in $(seq "$RUNS"); do
    rm -f "$DIR/plan.zst"
    measure plan "$bin" plan "$root" "$DIR/dst" --table default:big --out "$DIR/plan.zst"
    ps+=("$SECS"); pr+=("$RSS_MIB")
    # the HFiles, the .tableinfo and hbase.version
    grep -q "^files: $(( n + 2 ))$" "$DIR/plan.out" || { echo "plan of $n files says: $(grep '^files' "$DIR/plan.out")" >&2; exit 1; }
    measure verify "$bin" verify "$root" "$root" --table default:big --verify size --progress none
    vs+=("$SECS"); vr+=("$RSS_MIB")
  done
  printf '| %s | %s | plan --table | %s s | %s MiB |\n' "$label" "$n" \
    "$(printf '%s\n' "${ps[@]}" | median)" "$(printf '%s\n' "${pr[@]}" | median)"
  printf '| %s | %s | verify --table | %s s | %s MiB |\n' "$label" "$n" \
    "$(printf '%s\n' "${vs[@]}" | median)" "$(printf '%s\n' "${vr[@]}" | median)"
}

rows=()
for n in "${SIZES[@]}"; do
  echo "generating $n" >&2
  gen "$n"
  rows+=("$(runs "$(git rev-parse --short HEAD)" "$HBCP" "$n")")
  if [ -n "${BEFORE:-}" ]; then rows+=("$(runs before "$BEFORE" "$n")"); fi
done
echo "| build | files | command | wall (median of $RUNS) | peak RSS (median) |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
