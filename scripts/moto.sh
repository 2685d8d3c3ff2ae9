#!/usr/bin/env bash
# Start or stop moto's S3 server for hbcp's tests, on 127.0.0.1 only.
#   eval "$(scripts/moto.sh start)"   # installs moto[server] into .tools/venv if missing
#   scripts/moto.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
port=${PORT:-5000}
venv=.tools/venv
. scripts/lib.sh
server_files moto "$port" 5000
case "${1:-}" in
  start)
    if [ ! -x "$venv/bin/moto_server" ]; then
      python3 -m venv "$venv" >&2
      "$venv/bin/pip" install --quiet 'moto[server]==5.*' >&2
    fi
    start_server moto "$port" "$venv/bin/moto_server" -H 127.0.0.1 -p "$port"
    echo "export HBCP_TEST_S3=http://127.0.0.1:$port"
    ;;
  stop) stop_server ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
