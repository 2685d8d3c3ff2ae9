#!/usr/bin/env bash
# hbcp against AzCopy 10.32.2 on the same Azurite (in memory), same run, alternating, medians of
# RUNS (default 3), a fresh container per run (and for the scale set a fresh Azurite for every
# tool and run). Uploads are timed to the end of the tool;
# downloads up to `sync` of the target for AzCopy, since hbcp fsyncs (syncfs) itself.
#   scripts/bench-peers.sh [mixed|small|both]      # prints a markdown table
#   SCALE_N=5000 scripts/bench-peers.sh scale      # the scale set, also rclone; prints its table
#   scripts/bench-peers.sh all                     # mixed, small and scale
#   scripts/bench-peers.sh s3                      # the mixed tree on s3s-fs, also rclone, AWS CLI
# The scale set is SCALE_N (default 5000) empty files in an HBase-like layout (`hbcp-gen --preset
# scale`: 100 a region), uploaded and downloaded by AzCopy, hbcp and rclone (Debian's package,
# configured by RCLONE_CONFIG_AZ_* variables only: no config file is written) with 32 requests in
# flight each (AzCopy's default on 2 cores, hbcp's most, rclone's `--transfers 32 --checkers
# 32`); every download is counted.
# The s3 set is the mixed tree uploaded and downloaded by hbcp, rclone 1.60.1 (`--transfers 16`,
# configured by RCLONE_CONFIG_S3_* variables) and the AWS CLI (PyPI `awscli`, its defaults:
# `aws s3 cp --recursive`, 10 requests in flight) against s3s-fs 0.14.1 (crates.io, a file-system
# S3 server in Rust on 127.0.0.1:S3_PORT, data in $DIR/s3root), which unlike Azurite is not the
# ceiling of a client on this machine; a fresh bucket per tool and run, removed after it.
# CPU_BAR=1.0 makes it a check: exit 1 when hbcp's median CPU-s/GiB on the mixed tree (Azurite,
# either way) is above it, after printing the tables.
# Needs: npm (azurite, @azure-tools/azcopy-linux), Debian's libsecret-1-0, time and rclone; for
# the s3 set cargo (s3s-fs) and pip (awscli).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SETS=${1:-both}
DIR=${BENCH_DIR:-/tmp/hbcp-peers}
. scripts/lib.sh
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
case "$SETS" in both) SETS="mixed small" ;; all) SETS="mixed small scale" ;; esac
SCALE_N=${SCALE_N:-5000}
if [[ " $SETS " == *" scale "* || " $SETS " == *" s3 "* ]]; then peer_tools rclone; else peer_tools; fi
[[ " $SETS " != *" s3 "* ]] || s3_tools
[ -n "${SKIP_BUILD:-}" ] || cargo build --release -q -p hbcp -p hbcp-testkit
HBCP=${HBCP:-$PWD/target/release/hbcp}
GEN=${GEN:-$PWD/target/release/hbcp-gen}
PORT=${PORT:-10000}; export PORT
S3_PORT=${S3_PORT:-8014}
stop_all() {
  bash scripts/azurite.sh stop
  if [[ " $SETS " == *" s3 "* ]]; then server_files s3s-fs "$S3_PORT" 8014; stop_server; fi
}
trap stop_all EXIT
[[ " $SETS " != *" mixed "* && " $SETS " != *" small "* && " $SETS " != *" scale "* ]] || eval "$(bash scripts/azurite.sh start)"
mkdir -p "$DIR"
[[ " $SETS " != *" mixed "* && " $SETS " != *" s3 "* ]] || [ -d "$DIR/mixed" ] || "$GEN" --out "$DIR/mixed" --preset mixed --seed 3 >/dev/null
[[ " $SETS " != *" small "* ]] || [ -d "$DIR/small" ] || "$GEN" --out "$DIR/small" --preset small-files --seed 4 >/dev/null
if [[ " $SETS " == *" scale "* ]] && [ ! -f "$DIR/scale-$SCALE_N.done" ]; then
  rm -rf "$DIR/scale-$SCALE_N"
  "$GEN" --out "$DIR/scale-$SCALE_N" --preset scale --files "$SCALE_N" >/dev/null
  touch "$DIR/scale-$SCALE_N.done"
fi

# An account SAS for Azurite (AzCopy cannot use a shared key).
SAS=$(azurite_sas)
export AZCOPY_LOG_LOCATION=$DIR/azlogs AZCOPY_JOB_PLAN_LOCATION=$DIR/azplans AZCOPY_DISABLE_SYSLOG=true
n=0
# measure NAME CMD… → appends "wall cpu maxrss_kib" to $DIR/NAME.times
measure() {
  local name=$1; shift
  /usr/bin/time -f "%e %U %S %M" -o "$DIR/t.out" "$@" >"$DIR/out.log" 2>&1 || { tail -20 "$DIR/out.log"; exit 1; }
  awk '{print $1, $2+$3, $4}' "$DIR/t.out" >> "$DIR/$name.times"
}
for set in mixed small; do
  [[ " $SETS " == *" $set "* ]] || continue
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
# The scale set: SCALE_N empty files, three tools, each downloading what it uploaded.
down_count() { # the files a download wrote (hbcp's own .hbcp folder aside), or stop
  local got
  got=$(find "$DIR/down" -type f -not -path '*/.hbcp/*' | wc -l)
  [ "$got" -eq "$SCALE_N" ] || { echo "$1 downloaded $got of $SCALE_N files" >&2; exit 1; }
}
if [[ " $SETS " == *" scale "* ]]; then
  src=$DIR/scale-$SCALE_N
  rm -f "$DIR"/scale-*.times
  export RCLONE_CONFIG_AZ_TYPE=azureblob
  base="http://127.0.0.1:$PORT/devstoreaccount1"
  for _ in $(seq "$RUNS"); do
    for tool in azcopy hbcp rclone; do
      # A fresh, empty Azurite for every tool and run: its in-memory store slows down as it
      # fills (an upload of 3,000 empty files took AzCopy 20, 56 and then 124 s in one Azurite),
      # so the tool measured later would pay for the blobs of the ones before.
      bash scripts/azurite.sh stop
      eval "$(bash scripts/azurite.sh start)"
      n=$((n + 1)); c="${tool}${n}scale"
      curl -sf -X PUT "$base/$c?restype=container&$SAS" -H "x-ms-version: 2021-08-06" -H "Content-Length: 0" -o /dev/null
      rm -rf "$DIR/down"; mkdir -p "$DIR/down"; sync
      case $tool in
        azcopy)
          measure scale-up-azcopy "$AZCOPY" copy "$src/*" "$base/$c?$SAS" --from-to LocalBlob --recursive --log-level ERROR --output-level quiet
          measure scale-down-azcopy bash -c "'$AZCOPY' copy '$base/$c/*?$SAS' '$DIR/down' --from-to BlobLocal --recursive --log-level ERROR --output-level quiet && sync"
          down_count AzCopy ;;
        hbcp)
          measure scale-up-hbcp "$HBCP" copy "$src" "$base/$c" --progress none
          rm -rf "$DIR/down"; sync
          measure scale-down-hbcp "$HBCP" copy "$base/$c" "$DIR/down" --progress none
          down_count hbcp ;;
        rclone)
          export RCLONE_CONFIG_AZ_SAS_URL="$base/$c?$SAS"
          measure scale-up-rclone rclone copy "$src" "az:$c" --transfers 32 --checkers 32 -q
          measure scale-down-rclone bash -c "rclone copy 'az:$c' '$DIR/down' --transfers 32 --checkers 32 -q && sync"
          down_count rclone ;;
      esac
      rm -rf "$DIR/down"
    done
  done
  unset RCLONE_CONFIG_AZ_SAS_URL
fi
# The s3 set: the mixed tree, three tools against s3s-fs, each downloading what it uploaded.
if [[ " $SETS " == *" s3 "* ]]; then
  rm -rf "$DIR/s3root"; mkdir -p "$DIR/s3root"
  server_files s3s-fs "$S3_PORT" 8014
  start_server s3s-fs "$S3_PORT" "$S3S" --host 127.0.0.1 --port "$S3_PORT" \
    --access-key bench --secret-key bench-secret "$DIR/s3root"
  export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1 \
    AWS_DEFAULT_REGION=us-east-1 AWS_ENDPOINT_URL=http://127.0.0.1:$S3_PORT
  export RCLONE_CONFIG_S3_TYPE=s3 RCLONE_CONFIG_S3_PROVIDER=Other RCLONE_CONFIG_S3_ACCESS_KEY_ID=bench \
    RCLONE_CONFIG_S3_SECRET_ACCESS_KEY=bench-secret RCLONE_CONFIG_S3_ENDPOINT=$AWS_ENDPOINT_URL \
    RCLONE_CONFIG_S3_REGION=us-east-1
  files=$(find "$DIR/mixed" -type f | wc -l)
  rm -f "$DIR"/s3-*.times
  for _ in $(seq "$RUNS"); do
    for tool in aws hbcp rclone; do
      n=$((n + 1)); b="${tool}${n}s3"
      mkdir "$DIR/s3root/$b"
      rm -rf "$DIR/down"; mkdir -p "$DIR/down"; sync
      case $tool in
        aws)
          measure s3-up-aws "$AWS" s3 cp --recursive --only-show-errors "$DIR/mixed" "s3://$b"
          measure s3-down-aws bash -c "'$AWS' s3 cp --recursive --only-show-errors 's3://$b' '$DIR/down' && sync" ;;
        hbcp)
          measure s3-up-hbcp "$HBCP" copy "$DIR/mixed" "s3://$b" --progress none
          rm -rf "$DIR/down"; sync
          measure s3-down-hbcp "$HBCP" copy "s3://$b" "$DIR/down" --progress none ;;
        rclone)
          measure s3-up-rclone rclone copy "$DIR/mixed" "s3:$b" --transfers 16 -q
          measure s3-down-rclone bash -c "rclone copy 's3:$b' '$DIR/down' --transfers 16 -q && sync" ;;
      esac
      got=$(find "$DIR/down" -type f -not -path '*/.hbcp/*' | wc -l)
      [ "$got" -eq "$files" ] || { echo "$tool downloaded $got of $files files" >&2; exit 1; }
      rm -rf "$DIR/down" "${DIR:?}/s3root/$b"
    done
  done
fi
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
col() { cut -d' ' -f"$2" "$DIR/$1.times" | median; }
if [[ " $SETS " == *" mixed "* || " $SETS " == *" small "* ]]; then
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
fi
if [ -f "$DIR/scale-up-hbcp.times" ]; then
  echo
  echo "| scale set ($SCALE_N empty files) | direction | wall | files/s | CPU-s | peak RSS |"
  echo "|---|---|---|---|---|---|"
  for dir in up down; do
    for tool in azcopy hbcp rclone; do
      w=$(col "scale-$dir-$tool" 1); c=$(col "scale-$dir-$tool" 2); r=$(col "scale-$dir-$tool" 3)
      awk -v t="$tool" -v d="$dir" -v f="$SCALE_N" -v w="$w" -v c="$c" -v r="$r" 'BEGIN {
        name = (t == "azcopy" ? "AzCopy 10.32.2" : (t == "rclone" ? "rclone 1.60.1" : "hbcp"))
        printf "| %s | %s | %.2f s | %.0f | %.1f | %.0f MiB |\n", name, d, w, f/w, c, r/1024 }'
    done
  done
fi
if [ -f "$DIR/s3-up-hbcp.times" ]; then
  gib=$(du -sb "$DIR/mixed" | awk '{print $1/1073741824}')
  echo
  echo "| s3s-fs 0.14.1, mixed ($(awk -v g="$gib" 'BEGIN {printf "%.2f", g}') GiB) | direction | wall | wall ÷ best peer | CPU-s/GiB | CPU ÷ best peer | peak RSS |"
  echo "|---|---|---|---|---|---|---|"
  for dir in up down; do
    bw=$(for t in aws rclone; do col "s3-$dir-$t" 1; done | sort -n | head -1)
    bc=$(for t in aws rclone; do col "s3-$dir-$t" 2; done | sort -n | head -1)
    for tool in aws rclone hbcp; do
      w=$(col "s3-$dir-$tool" 1); c=$(col "s3-$dir-$tool" 2); r=$(col "s3-$dir-$tool" 3)
      awk -v t="$tool" -v d="$dir" -v g="$gib" -v w="$w" -v c="$c" -v r="$r" -v bw="$bw" -v bc="$bc" 'BEGIN {
        name = (t == "aws" ? "AWS CLI" : (t == "rclone" ? "rclone 1.60.1" : "hbcp"))
        printf "| %s | %s | %.2f s | %.2f | %.2f | %.2f | %.0f MiB |\n", name, d, w, w/bw, c/g, c/bc, r/1024 }'
    done
  done
fi
echo
echo "medians of $RUNS alternating runs; Azurite in memory (s3s-fs on disk) on 127.0.0.1; a fresh container or bucket per run"
if [ -n "${CPU_BAR:-}" ] && [ -f "$DIR/mixed-up-hbcp.times" ]; then
  gib=$(du -sb "$DIR/mixed" | awk '{print $1/1073741824}')
  over=0
  for dir in up down; do
    c=$(col "mixed-$dir-hbcp" 2)
    awk -v c="$c" -v g="$gib" -v b="$CPU_BAR" 'BEGIN {exit !(c / g > b)}' && {
      echo "hbcp used $(awk -v c="$c" -v g="$gib" 'BEGIN {printf "%.2f", c/g}') CPU-s/GiB on the mixed $dir, above CPU_BAR=$CPU_BAR" >&2
      over=1
    }
  done
  exit "$over"
fi
