#!/usr/bin/env bash
# Hadoop streaming mapper: each input line is one shard index; the mapper runs that shard.
# Input: a file with the lines 0..N-1 (see run-streaming.sh), one map task per line.
set -euo pipefail
plan="${HBCP_PLAN:?HBCP_PLAN must name the plan file shipped with -files}"
shards="${HBCP_SHARDS:?HBCP_SHARDS must be N}"
while read -r index _; do
  [ -n "$index" ] || continue
  # Report liveness to YARN while the shard runs (streaming kills silent tasks).
  ./hbcp run "$(basename "$plan")" --shard "${index}/${shards}" --progress json \
    --state "./hbcp-state-${index}" --report "./report-${index}.json" |
    while read -r line; do echo "reporter:status:${line:0:200}" >&2; done
  status=${PIPESTATUS[0]}
  echo -e "${index}\t${status}"
  [ "$status" -eq 0 ] || exit "$status"
done
