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
. scripts/lib.sh
# One PID file per port, so that a second instance on another port is its own.
server_files azurite "$port" 10000
case "${1:-}" in
  start)
    if [ ! -x "$tools/node_modules/.bin/azurite-blob" ]; then
      mkdir -p "$tools"
      npm install --silent --no-audit --no-fund --prefix "$tools" azurite@3.35.0 >&2
    fi
    # In memory, unless AZURITE_DB names a SQL database for the blob metadata (mysql://…, see
    # scripts/mariadb.sh); then the blob data goes to a folder of its own, deleted at stop.
    store=(--inMemoryPersistence)
    if [ -n "${AZURITE_DB:-}" ]; then
      rm -rf "$tools/azurite-$port-data"; mkdir -p "$tools/azurite-$port-data"
      store=(--location "$tools/azurite-$port-data")
    fi
    start_server azurite "$port" "$tools/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 \
      --blobPort "$port" "${store[@]}" --disableTelemetry --loose --skipApiVersionCheck --silent
    echo "export HBCP_TEST_AZURITE=http://127.0.0.1:$port"
    ;;
  stop) stop_server; rm -rf "$tools/azurite-$port-data" ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
