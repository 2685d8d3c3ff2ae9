# Shared by scripts/azurite.sh, moto.sh and gcs.sh: one emulator process per port, on
# 127.0.0.1 only, tracked by a PID file under .tools/ and stopped by that PID.
#   server_files NAME PORT DEFAULT_PORT   # sets $pidfile and $log (the default port keeps the
#                                         # historical name .tools/NAME.pid)
#   start_server NAME PORT CMD...         # starts CMD unless running; waits for the port
#   stop_server                           # kills the PID in $pidfile
# And, for the benchmarks against the peers:
#   peer_tools [rclone]    # installs AzCopy 10.32.2 (npm) and its libsecret-1-0 (and rclone,
#                          # Debian's) if missing; sets $AZCOPY
#   s3_tools               # installs s3s-fs 0.14.1 (cargo, into .tools/s3s-fs) and the AWS CLI
#                          # (pip, into .tools/awscli) if missing; sets $S3S and $AWS
#   azurite_sas            # prints an account SAS for Azurite's devstoreaccount1 (AzCopy and
#                          # rclone cannot use a shared key)
# And, for the scale benchmarks (bench-scale.sh, bench-sync.sh), with $DIR the bench folder and
# $GEN the hbcp-gen binary:
#   bench_setup            # GNU time (for peak RSS), the release build unless SKIP_BUILD, and
#                          # $HBCP and $GEN (default: the release binaries)
#   gen N                  # writes $DIR/src-N, N empty files (hbcp-gen --preset scale), once
#   measure NAME CMD...    # runs CMD under /usr/bin/time; sets SECS and RSS_MIB

server_files() {
  pidfile=.tools/$1.pid
  [ "$2" = "$3" ] || pidfile=.tools/$1-$2.pid
  log=${pidfile%.pid}.log
}

start_server() {
  local name=$1 port=$2; shift 2
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "$name already running (pid $(cat "$pidfile"))" >&2
    return 0
  fi
  mkdir -p .tools
  nohup "$@" > "$log" 2>&1 &
  echo $! > "$pidfile"
  # Wait (at most 30 s) for the port to open; a process that died says why from its log.
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    kill -0 "$(cat "$pidfile")" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.1
  done
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$name did not open port $port" >&2; exit 1; }
  echo "$name started on 127.0.0.1:$port (pid $(cat "$pidfile"))" >&2
}

stop_server() {
  if [ -f "$pidfile" ]; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  fi
}

peer_tools() {
  dpkg -s libsecret-1-0 >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq libsecret-1-0 >/dev/null; }
  if [ "${1:-}" = rclone ] && ! command -v rclone >/dev/null; then
    apt-get update -qq && apt-get install -y -qq rclone >/dev/null
  fi
  AZCOPY=$PWD/.tools/node/node_modules/@azure-tools/azcopy-linux/dist/bin/azcopy_linux_amd64
  [ -f "$AZCOPY" ] || npm install --silent --no-audit --no-fund --prefix .tools/node @azure-tools/azcopy-linux >&2
  chmod +x "$AZCOPY"
}

s3_tools() {
  S3S=$PWD/.tools/s3s-fs/bin/s3s-fs
  [ -x "$S3S" ] || cargo install --quiet --locked s3s-fs --version 0.14.1 --features binary --root .tools/s3s-fs >&2
  AWS=$PWD/.tools/awscli/bin/aws
  if [ ! -x "$AWS" ]; then
    python3 -m venv .tools/awscli >&2
    .tools/awscli/bin/pip install --quiet awscli==1.45.11 >&2
  fi
}

azurite_sas() {
  python3 - "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==" <<'PY'
import base64, hmac, hashlib, sys, urllib.parse
key = base64.b64decode(sys.argv[1])
p = dict(sv="2021-08-06", ss="b", srt="sco", sp="rwdlacup", se="2099-01-01T00:00:00Z", spr="https,http")
to_sign = "\n".join(["devstoreaccount1", p["sp"], p["ss"], p["srt"], "", p["se"], "", p["spr"], p["sv"], "", ""])
p["sig"] = base64.b64encode(hmac.new(key, to_sign.encode(), hashlib.sha256).digest()).decode()
print(urllib.parse.urlencode(p))
PY
}

bench_setup() {
  if [ ! -x /usr/bin/time ]; then
    echo "installing GNU time (for peak RSS)" >&2
    apt-get update -qq && apt-get install -y -qq time >/dev/null
  fi
  if [ -z "${SKIP_BUILD:-}" ]; then cargo build --release -q -p hbcp -p hbcp-testkit; fi
  HBCP=${HBCP:-$PWD/target/release/hbcp}
  GEN=${GEN:-$PWD/target/release/hbcp-gen}
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
  if ! /usr/bin/time -f "%e %M" -o "$DIR/t.out" "$@" >"$DIR/$name.out" 2>"$DIR/$name.err"; then
    echo "FAILED: $*" >&2; tail -20 "$DIR/$name.err" >&2; exit 1
  fi
  read -r SECS RSS_KIB < "$DIR/t.out"
  RSS_MIB=$(( RSS_KIB / 1024 ))
}
