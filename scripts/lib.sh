# Shared by scripts/azurite.sh, moto.sh and gcs.sh: one emulator process per port, on
# 127.0.0.1 only, tracked by a PID file under .tools/ and stopped by that PID.
#   server_files NAME PORT DEFAULT_PORT   # sets $pidfile and $log (the default port keeps the
#                                         # historical name .tools/NAME.pid)
#   start_server NAME PORT CMD...         # starts CMD unless running; waits for the port
#   stop_server                           # kills the PID in $pidfile

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
