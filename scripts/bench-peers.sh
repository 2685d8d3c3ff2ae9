#!/usr/bin/env bash
# hbcp against AzCopy 10.32.2 on the same Azurite (in memory), same run, alternating, medians of
# RUNS (default 3), a fresh container per run. Uploads are timed to the end of the tool;
# downloads up to `sync` of the target for AzCopy, since hbcp fsyncs (syncfs) itself.
#   scripts/bench-peers.sh [mixed|small|both]      # prints a markdown table
# Needs: npm (azurite, @azure-tools/azcopy-linux), Debian's libsecret-1-0 and time.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SETS=${1:-both}
DIR=${BENCH_DIR:-/tmp/hbcp-peers}
KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
dpkg -s libsecret-1-0 >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq libsecret-1-0 >/dev/null; }
AZCOPY=.tools/node/node_modules/@azure-tools/azcopy-linux/dist/bin/azcopy_linux_amd64
[ -f "$AZCOPY" ] || npm install --silent --no-audit --no-fund --prefix .tools/node @azure-tools/azcopy-linux >&2
chmod +x "$AZCOPY"
cargo build --release -q -p hbcp -p hbcp-testkit
HBCP=$PWD/target/release/hbcp
GEN=$PWD/target/release/hbcp-gen
PORT=${PORT:-10000}; export PORT
eval "$(bash scripts/azurite.sh start)"
trap 'bash scripts/azurite.sh stop' EXIT
mkdir -p "$DIR"
[ -d "$DIR/mixed" ] || "$GEN" --out "$DIR/mixed" --preset mixed --seed 3 >/dev/null
[ -d "$DIR/small" ] || "$GEN" --out "$DIR/small" --preset small-files --seed 4 >/dev/null

# An account SAS for Azurite (AzCopy cannot use a shared key).
SAS=$(python3 - "$KEY" <<'PY'
import base64, hmac, hashlib, sys, urllib.parse
key = base64.b64decode(sys.argv[1])
p = dict(sv="2021-08-06", ss="b", srt="sco", sp="rwdlacup", se="2099-01-01T00:00:00Z", spr="https,http")
to_sign = "\n".join(["devstoreaccount1", p["sp"], p["ss"], p["srt"], "", p["se"], "", p["spr"], p["sv"], "", ""])
p["sig"] = base64.b64encode(hmac.new(key, to_sign.encode(), hashlib.sha256).digest()).decode()
print(urllib.parse.urlencode(p))
PY
)
export AZCOPY_LOG_LOCATION=$DIR/azlogs AZCOPY_JOB_PLAN_LOCATION=$DIR/azplans AZCOPY_DISABLE_SYSLOG=true
n=0
# measure NAME CMD… → appends "wall cpu maxrss_kib" to $DIR/NAME.times
measure() {
  local name=$1; shift
  /usr/bin/time -f "%e %U %S %M" -o "$DIR/t.out" "$@" >"$DIR/out.log" 2>&1 || { tail -20 "$DIR/out.log"; exit 1; }
  awk '{print $1, $2+$3, $4}' "$DIR/t.out" >> "$DIR/$name.times"
}
for set in mixed small; do
  [ "$SETS" = both ] || [ "$SETS" = "$set" ] || continue
  rm -f "$DIR/$set"-*.times
  for _ in $(seq "$RUNS"); do
    n=$((n + 1))
    az="http://127.0.0.1:$PORT/devstoreaccount1/az$n$set"
    hb="http://127.0.0.1:$PORT/devstoreaccount1/hb$n$set"
    curl -sf -X PUT "$az?restype=container&$SAS" -H "x-ms-version: 2021-08-06" -H "Content-Length: 0" -o /dev/null
    measure "$set-up-azcopy" "$AZCOPY" copy "$DIR/$set/*" "$az?$SAS" --from-to LocalBlob --recursive --log-level ERROR --output-level quiet
    measure "$set-up-hbcp" "$HBCP" copy "$DIR/$set" "$hb" --progress none
    rm -rf "$DIR/down"; mkdir -p "$DIR/down"; sync
    measure "$set-down-azcopy" bash -c "'$AZCOPY' copy '$az/*?$SAS' '$DIR/down' --from-to BlobLocal --recursive --log-level ERROR --output-level quiet && sync"
    rm -rf "$DIR/down"; sync
    measure "$set-down-hbcp" "$HBCP" copy "$hb" "$DIR/down" --progress none
    rm -rf "$DIR/down"
  done
done
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
col() { cut -d' ' -f"$2" "$DIR/$1.times" | median; }
echo "| set | direction | AzCopy wall | hbcp wall | wall ratio hbcp/AzCopy | AzCopy CPU-s/GiB | hbcp CPU-s/GiB | CPU ratio | AzCopy peak RSS | hbcp peak RSS | RSS ratio | files/s AzCopy | files/s hbcp |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for set in mixed small; do
  [ -f "$DIR/$set-up-hbcp.times" ] || continue
  gib=$(du -sb "$DIR/$set" | awk '{print $1/1073741824}')
  files=$(find "$DIR/$set" -type f | wc -l)
  for dir in up down; do
    aw=$(col "$set-$dir-azcopy" 1); hw=$(col "$set-$dir-hbcp" 1)
    ac=$(col "$set-$dir-azcopy" 2); hc=$(col "$set-$dir-hbcp" 2)
    ar=$(col "$set-$dir-azcopy" 3); hr=$(col "$set-$dir-hbcp" 3)
    awk -v s="$set" -v d="$dir" -v g="$gib" -v f="$files" -v aw="$aw" -v hw="$hw" -v ac="$ac" -v hc="$hc" -v ar="$ar" -v hr="$hr" 'BEGIN {
      printf "| %s (%.2f GiB, %d files) | %s | %.2f s | %.2f s | %.2f | %.1f | %.1f | %.2f | %.0f MiB | %.0f MiB | %.2f | %.0f | %.0f |\n",
        s, g, f, d, aw, hw, hw/aw, ac/g, hc/g, hc/ac, ar/1024, hr/1024, hr/ar, f/aw, f/hw }'
  done
done
echo
echo "medians of $RUNS alternating runs; Azurite in memory on 127.0.0.1; a fresh container per run"
