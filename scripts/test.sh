#!/usr/bin/env bash
# Runs every test of hbcp on a fresh machine: installs and starts what the tests need
# (Azurite from npm, moto from pip, on 127.0.0.1 only, stopped by PID at the end), then runs
# the whole cargo test suite. This is the README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

servers=()
cleanup() {
  for s in "${servers[@]}"; do bash "scripts/$s.sh" stop || true; done
}
trap cleanup EXIT

# Cloud emulators, when the cloud endpoints are part of the build.
if [ -f scripts/azurite.sh ] && [ -d store/cloud ]; then
  eval "$(bash scripts/azurite.sh start)"
  servers+=(azurite)
fi
if [ -f scripts/moto.sh ] && [ -d store/cloud ]; then
  eval "$(bash scripts/moto.sh start)"
  servers+=(moto)
fi

cargo test --workspace --locked 2>&1 | tee "${TMPDIR:-/tmp}/hbcp-test.log"
status=${PIPESTATUS[0]}
passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' "${TMPDIR:-/tmp}/hbcp-test.log" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' "${TMPDIR:-/tmp}/hbcp-test.log" | awk '{s+=$1} END {print s+0}')
echo "tests: ${passed} passed, ${failed} failed"
exit "$status"
