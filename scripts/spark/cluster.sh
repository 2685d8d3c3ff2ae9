#!/usr/bin/env bash
# A Spark standalone cluster on 127.0.0.1 (a master and two workers) to run hbcp's shards on,
# for the tests and for trying scripts/spark/hbcp-spark on one machine.
#   scripts/spark/cluster.sh start   # installs what is missing (OpenJDK 17 from Debian when
#                                    # there is no java; pyspark, pinned, into .tools/spark-venv),
#                                    # starts the master and the workers, waits until both
#                                    # workers have registered; the master URL is the last line
#   scripts/spark/cluster.sh stop    # stops them by PID
# SPARK_MASTER_PORT (default 7177) and SPARK_UI_PORT (default 8177) place the master and its web
# UI; the workers take the next two ports of each. SPARK_WORKER_CORES (default 2) per worker.
# Logs, PID files and the workers' folders (one per executor: its stdout and stderr) are under
# .tools/spark-PORT/. Everything listens on 127.0.0.1 only (SPARK_LOCAL_IP).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYSPARK_VERSION=3.5.8
port=${SPARK_MASTER_PORT:-7177}
ui=${SPARK_UI_PORT:-8177}
cores=${SPARK_WORKER_CORES:-2}
venv=$PWD/.tools/spark-venv
dir=$PWD/.tools/spark-$port
export SPARK_LOCAL_IP=127.0.0.1 SPARK_LOCAL_HOSTNAME=127.0.0.1
# The daemons' own logs and temporary files stay in the cluster's folder.
export SPARK_LOG_DIR=$dir/logs SPARK_PID_DIR=$dir

open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

install() {
  if ! command -v java >/dev/null; then
    echo "installing OpenJDK 17 (no java found)" >&2
    apt-get update -qq >&2 && apt-get install -y -qq openjdk-17-jre-headless >&2
  fi
  if [ ! -x "$venv/bin/spark-submit" ]; then
    echo "installing pyspark $PYSPARK_VERSION into $venv" >&2
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet "pyspark==$PYSPARK_VERSION" >&2
  fi
}

# start_daemon NAME CLASS ARGS...: one JVM in the background, its PID in $dir/NAME.pid.
start_daemon() {
  local name=$1; shift
  nohup "$SPARK_HOME/bin/spark-class" "$@" >"$dir/logs/$name.log" 2>&1 &
  echo $! >"$dir/$name.pid"
}

stop_daemons() {
  local f pid
  for f in "$dir/worker2.pid" "$dir/worker1.pid" "$dir/master.pid"; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    if kill "$pid" 2>/dev/null; then
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
    fi
    rm -f "$f"
  done
}

case "${1:-}" in
  start)
    install
    if [ -f "$dir/master.pid" ] && kill -0 "$(cat "$dir/master.pid")" 2>/dev/null; then
      echo "a Spark master is already running from $dir (pid $(cat "$dir/master.pid")); stop it first" >&2
      exit 1
    fi
    for p in "$port" $((port + 1)) $((port + 2)) "$ui" $((ui + 1)) $((ui + 2)); do
      if open "$p"; then echo "port $p on 127.0.0.1 is taken; set SPARK_MASTER_PORT / SPARK_UI_PORT" >&2; exit 1; fi
    done
    SPARK_HOME=$("$venv/bin/python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
    export SPARK_HOME
    rm -rf "$dir"
    mkdir -p "$dir/logs" "$dir/work1" "$dir/work2"
    master=spark://127.0.0.1:$port
    start_daemon master org.apache.spark.deploy.master.Master \
      --host 127.0.0.1 --port "$port" --webui-port "$ui"
    for _ in $(seq 1 600); do open "$port" && break; sleep 0.1; done
    open "$port" || { cat "$dir/logs/master.log" >&2; stop_daemons; echo "the Spark master did not open port $port" >&2; exit 1; }
    for w in 1 2; do
      start_daemon "worker$w" org.apache.spark.deploy.worker.Worker \
        --host 127.0.0.1 --port $((port + w)) --webui-port $((ui + w)) \
        --cores "$cores" --memory 2g --work-dir "$dir/work$w" "$master"
    done
    # Ready when the master lists both workers as alive (its JSON page).
    alive=0
    for _ in $(seq 1 600); do
      alive=$(curl -sf "http://127.0.0.1:$ui/json/" 2>/dev/null | grep -Eo '"aliveworkers" *: *[0-9]+' | grep -Eo '[0-9]+$' || echo 0)
      [ "$alive" -ge 2 ] && break
      sleep 0.1
    done
    if [ "$alive" -lt 2 ]; then
      tail -n 20 "$dir"/logs/*.log >&2
      stop_daemons
      echo "the Spark workers did not register with $master" >&2
      exit 1
    fi
    echo "Spark $PYSPARK_VERSION: master $master (UI http://127.0.0.1:$ui), 2 workers of $cores cores; logs in $dir/logs" >&2
    echo "$master"
    ;;
  stop) stop_daemons ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
