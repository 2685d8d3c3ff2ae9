#!/usr/bin/env bash
# Start or stop Azurite (Azure Blob emulator) for hbcp's tests, on 127.0.0.1 only.
#   eval "$(scripts/azurite.sh start)"   # installs azurite@3.35.0 into .tools/node if missing,
#                                        # starts it in memory, prints the env for the tests
#   scripts/azurite.sh stop              # stops it by PID
# PORT (default 10000). Extra accounts: AZURITE_ACCOUNTS="acct2:base64key" (Azurite's own format).
set -euo pipefail
cd "$(dirname "$0")/.."
port=${PORT:-10000}
tools=.tools/node
# One PID file per port, so that a second instance on another port is its own; the default
# port keeps the historical name.
pidfile=.tools/azurite.pid; [ "$port" = 10000 ] || pidfile=.tools/azurite-$port.pid
log=${pidfile%.pid}.log
case "${1:-}" in
  start)
    if [ ! -x "$tools/node_modules/.bin/azurite-blob" ]; then
      mkdir -p "$tools"
      npm install --silent --no-audit --no-fund --prefix "$tools" azurite@3.35.0 >&2
    fi
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "azurite already running (pid $(cat "$pidfile"))" >&2
    else
      mkdir -p .tools
      nohup "$tools/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$port" \
        --inMemoryPersistence --disableTelemetry --loose --skipApiVersionCheck --silent \
        > "$log" 2>&1 &
      echo $! > "$pidfile"
      for _ in $(seq 1 300); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
        kill -0 "$(cat "$pidfile")" 2>/dev/null || { cat "$log" >&2; exit 1; }
        sleep 0.1
      done
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "azurite did not open port $port" >&2; exit 1; }
      echo "azurite started on 127.0.0.1:$port (pid $(cat "$pidfile"))" >&2
    fi
    echo "export HBCP_TEST_AZURITE=http://127.0.0.1:$port"
    ;;
  stop)
    if [ -f "$pidfile" ]; then
      kill "$(cat "$pidfile")" 2>/dev/null || true
      rm -f "$pidfile"
    fi
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
