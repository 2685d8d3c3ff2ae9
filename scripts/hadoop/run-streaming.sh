#!/usr/bin/env bash
# Run the shards of an hbcp plan as a Hadoop streaming job on an HDInsight/YARN cluster
# (one mapper per shard), then finalize.
#   scripts/hadoop/run-streaming.sh job.plan 16
set -euo pipefail
plan=${1:?usage: run-streaming.sh PLAN N}
shards=${2:?usage: run-streaming.sh PLAN N}
here=$(cd "$(dirname "$0")" && pwd)
work=/tmp/hbcp-streaming-$$
hdfs dfs -mkdir -p "$work"
seq 0 $((shards - 1)) | hdfs dfs -put - "$work/shards.txt"
streaming_jar=$(ls /usr/hdp/current/hadoop-mapreduce-client/hadoop-streaming*.jar 2>/dev/null | head -n1)
hadoop jar "${streaming_jar:?hadoop-streaming jar not found}" \
  -D mapreduce.job.name="hbcp $(basename "$plan")" \
  -D mapreduce.job.reduces=0 \
  -D mapreduce.input.lineinputformat.linespermap=1 \
  -D mapreduce.map.maxattempts=4 \
  -D mapreduce.task.timeout=1800000 \
  -D mapreduce.map.memory.mb=2048 \
  -cmdenv HBCP_PLAN="$(basename "$plan")" -cmdenv HBCP_SHARDS="$shards" \
  -files "$plan,$(command -v hbcp),$here/hbcp-mapper.sh" \
  -inputformat org.apache.hadoop.mapred.lib.NLineInputFormat \
  -input "$work/shards.txt" -output "$work/out" \
  -mapper hbcp-mapper.sh
hbcp finalize "$plan"
