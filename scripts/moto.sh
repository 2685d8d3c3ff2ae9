#!/usr/bin/env bash
# Start or stop moto's S3 server for hbcp's tests, on 127.0.0.1 only.
#   eval "$(scripts/moto.sh start)"   # installs moto[server] into .tools/venv if missing
#   scripts/moto.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
port=${PORT:-5000}
venv=.tools/venv
pidfile=.tools/moto.pid; [ "$port" = 5000 ] || pidfile=.tools/moto-$port.pid
log=${pidfile%.pid}.log
case "${1:-}" in
  start)
    if [ ! -x "$venv/bin/moto_server" ]; then
      python3 -m venv "$venv" >&2
      "$venv/bin/pip" install --quiet 'moto[server]==5.*' >&2
    fi
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "moto already running (pid $(cat "$pidfile"))" >&2
    else
      mkdir -p .tools
      nohup "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" > "$log" 2>&1 &
      echo $! > "$pidfile"
      for _ in $(seq 1 300); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
        kill -0 "$(cat "$pidfile")" 2>/dev/null || { cat "$log" >&2; exit 1; }
        sleep 0.1
      done
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "moto did not open port $port" >&2; exit 1; }
      echo "moto started on 127.0.0.1:$port (pid $(cat "$pidfile"))" >&2
    fi
    echo "export HBCP_TEST_S3=http://127.0.0.1:$port"
    ;;
  stop)
    if [ -f "$pidfile" ]; then
      kill "$(cat "$pidfile")" 2>/dev/null || true
      rm -f "$pidfile"
    fi
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
