#!/usr/bin/env bash
# MariaDB (Debian's package) on 127.0.0.1, as the SQL metadata store of an Azurite that has to
# hold millions of blobs (the 1,000,000-object listing of scripts/bench-scale.sh): Azurite's own
# in-memory store takes ~100 PUTs/s and cannot load more than ~500 k blobs from its JSON file.
#   eval "$(PORT=3399 scripts/mariadb.sh start)"   # installs mariadb-server if missing; prints
#                                                  # export HBCP_MARIADB=mysql://…/ (add a database)
#   PORT=3399 scripts/mariadb.sh sql "SQL"          # runs SQL as root over the server's socket
#   PORT=3399 scripts/mariadb.sh stop               # stops it by PID; its data folder is deleted
# The data folder is .tools/mariadb-PORT; the user `azurite` (password `azurite`, a throwaway of
# a loopback-only benchmark server) may create and use any database.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
port=${PORT:-3399}
server_files mariadb "$port" 3399
data=$PWD/.tools/mariadb-$port
sql() { mariadb --no-defaults -S "$data/sock" -uroot -N -B -e "$1"; }
case "${1:-}" in
  start)
    if ! command -v mariadbd >/dev/null; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server >/dev/null
    fi
    if [ ! -d "$data/db" ]; then
      mkdir -p "$data"
      mariadb-install-db --no-defaults --datadir="$data/db" --user=root \
        --auth-root-authentication-method=socket > "$data/install.log" 2>&1
    fi
    # A benchmark's store: durability traded for load speed (no flush at every commit).
    start_server mariadb "$port" mariadbd --no-defaults --datadir="$data/db" \
      --bind-address=127.0.0.1 --port="$port" --socket="$data/sock" --pid-file="$data/pid" \
      --user=root --skip-name-resolve --innodb-buffer-pool-size=2G \
      --innodb-flush-log-at-trx-commit=0 --max-connections=500
    sql "CREATE USER IF NOT EXISTS 'azurite'@'127.0.0.1' IDENTIFIED BY 'azurite';
         GRANT ALL ON *.* TO 'azurite'@'127.0.0.1';"
    echo "export HBCP_MARIADB=mysql://azurite:azurite@127.0.0.1:$port/"
    ;;
  sql) sql "$2" ;;
  stop)
    stop_server
    # mariadbd exits after its shutdown; wait for it before the folder goes
    for _ in $(seq 1 100); do [ -e "$data/pid" ] || break; sleep 0.1; done
    rm -rf "$data"
    ;;
  *) echo "usage: $0 start|sql SQL|stop" >&2; exit 2 ;;
esac
