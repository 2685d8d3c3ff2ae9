"""Runs the shards of an hbcp plan as Spark tasks, then `hbcp finalize` on the driver.

Why: a Spark cluster (HDInsight beside HBase, YARN, Kubernetes, standalone) gives many machines,
scheduling and retries; `hbcp run PLAN --shard I/N` is already a self-contained, resumable piece
of work. One Spark task per shard runs it with the hbcp binary and the plan shipped to the
executors (SparkContext.addFile, read back with SparkFiles), forwards the shard's
`--progress json` lines to the executor's log, and fails with the shard's exit status so that
Spark runs the task again (a retried shard resumes from its journal, or from what is already at
the target). When every shard is done the driver runs `hbcp finalize PLAN` and exits with its
status. Started by scripts/spark/hbcp-spark, which documents the arguments.

Credentials: `--env NAME` copies the driver's environment variable NAME into each executor's
environment (spark.executorEnv.NAME, set here from os.environ, never on a command line), and
widens spark.redaction.regex so that Spark shows those values as *********(redacted) in its UI
and event log. Without --env, hbcp on the executors uses the executors' own environment
(a managed identity, the node's configuration).

Exit status: finalize's (0 complete and verified, 1 something failed); when a shard failed every
Spark attempt: that shard's last hbcp status (1, 2 or 3), or 3 when it was killed by a signal;
2 for bad arguments.
"""

import argparse
import collections
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading

# The marker a failed task leaves in its error, read back by the driver from Spark's job error.
EXIT_MARK = "hbcp-shard-exit="


def shard_task(hbcp_name, plan_name, shards, run_args):
    """The function each Spark task runs for its one shard index (a closure: no secret in it)."""

    def run(index):
        from pyspark import SparkFiles, TaskContext

        ctx = TaskContext.get()
        attempt = ctx.attemptNumber() if ctx else 0
        hbcp = SparkFiles.get(hbcp_name)
        os.chmod(hbcp, 0o755)
        plan = SparkFiles.get(plan_name)
        tag = f"hbcp shard {index}/{shards} attempt {attempt}"
        fd, report = tempfile.mkstemp(prefix=f"hbcp-shard-{index}-", suffix=".json")
        os.close(fd)
        cmd = [hbcp, "run", plan, "--shard", f"{index}/{shards}", "--progress", "json",
               "--report", report] + list(run_args)
        log(f"{tag}: starting on {socket.gethostname()} (pid of hbcp follows)")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                errors="replace", preexec_fn=die_with_parent)
        log(f"{tag}: hbcp pid {proc.pid}")
        tail = collections.deque(maxlen=5)

        def errors():
            for line in proc.stderr:
                tail.append(line.rstrip("\n"))
                log(f"{tag}: {line.rstrip()}")

        reader = threading.Thread(target=errors, daemon=True)
        reader.start()
        for line in proc.stdout:
            # One JSON line a second; Spark keeps the executor's stderr as the task's log.
            log(f"{tag}: {line.rstrip()}")
        status = proc.wait()
        reader.join()
        if status != 0:
            os.unlink(report)
            why = f"killed by signal {-status}" if status < 0 else f"exit status {status}"
            last = " | ".join(tail)
            raise RuntimeError(f"{tag}: hbcp run failed ({why}) {EXIT_MARK}{status}: {last}")
        with open(report) as f:
            r = json.load(f)
        os.unlink(report)
        keys = ("files_copied", "bytes_copied", "files_skipped", "bytes_skipped", "retries",
                "elapsed_s")
        out = {k: r.get(k) for k in keys}
        out.update(shard=index, attempt=attempt, host=socket.gethostname())
        return out

    return run


def die_with_parent():
    """In the child, before exec: SIGKILL when the task's Python worker dies (Linux).

    Spark kills the Python worker of a cancelled task, or loses it with its executor, and then
    may run the shard again elsewhere: an orphaned hbcp must not go on beside the new attempt
    (two runs of one shard at once do not end well: measured, the first exits 1). SIGKILL, not
    SIGTERM: hbcp stops at once (on SIGTERM it drains its ranges in flight for seconds), and a
    kill -9 is a crash hbcp resumes from without sending a durable range again."""
    import ctypes

    pr_set_pdeathsig, sigkill = 1, 9
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, sigkill)


def log(line):
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def exit_status_of(error):
    """The hbcp status a failed job carries in its error text: 1, 2, 3 (3 for a signal)."""
    codes = [int(c) for c in re.findall(EXIT_MARK + r"(-?\d+)", str(error))]
    if not codes:
        return None
    c = codes[-1]
    return c if c in (1, 2, 3) else 3


def main(argv=None):
    p = argparse.ArgumentParser(prog="hbcp-spark", description=__doc__.split("\n\n")[0])
    p.add_argument("plan")
    p.add_argument("--shards", type=int, required=True)
    p.add_argument("--hbcp", required=True, help="the hbcp binary on the driver")
    p.add_argument("--env", action="append", default=[], metavar="NAME")
    argv = sys.argv[1:] if argv is None else argv
    # After `--`: arguments for every `hbcp run`.
    cut = argv.index("--") if "--" in argv else len(argv)
    a = p.parse_args(argv[:cut])
    run_args = argv[cut + 1:]
    if a.shards < 1:
        log(f"hbcp-spark: --shards {a.shards}: expected a number of shards, 1 or more")
        return 2
    if not os.path.isfile(a.plan):
        log(f"hbcp-spark: {a.plan}: no such plan file; write one with `hbcp plan SRC DST --out FILE`")
        return 2
    missing = [n for n in a.env if n not in os.environ]
    if missing:
        log(f"hbcp-spark: --env {missing[0]}: not set in the driver's environment; export it first")
        return 2

    from pyspark import SparkConf, SparkContext

    conf = SparkConf()
    # Two copies of one shard must never run at once.
    conf.set("spark.speculation", "false")
    conf.setIfMissing("spark.app.name", f"hbcp {os.path.basename(a.plan)}")
    for name in a.env:
        conf.setExecutorEnv(name, os.environ[name])
    if a.env:
        # Spark's default regex (secret|password|token|access.key) misses names such as
        # AZURE_STORAGE_ACCOUNT_KEY: redact every variable forwarded here, by name.
        default = "(?i)secret|password|token|access[.]key"
        names = "|".join(re.escape(n) for n in a.env)
        conf.set("spark.redaction.regex", f"{conf.get('spark.redaction.regex', default)}|{names}")
    sc = SparkContext(conf=conf)
    sc.setLogLevel("WARN")
    # Shipped to every executor (SparkFiles), as spark-submit --files would.
    sc.addFile(os.path.abspath(a.hbcp))
    sc.addFile(os.path.abspath(a.plan))
    hbcp_name, plan_name = os.path.basename(a.hbcp), os.path.basename(a.plan)
    try:
        results = (sc.parallelize(range(a.shards), a.shards)
                   .map(shard_task(hbcp_name, plan_name, a.shards, run_args))
                   .collect())
    except Exception as e:  # a shard failed every attempt Spark allows
        status = exit_status_of(e)
        first = next((line for line in str(e).splitlines() if EXIT_MARK in line), str(e).splitlines()[0])
        log(f"hbcp-spark: a shard failed every attempt: {first.strip()}")
        sc.stop()
        subprocess.call([a.hbcp, "status", a.plan, "--shards", str(a.shards)])
        log("hbcp-spark: run hbcp-spark again to resume: done shards are skipped, the others resume")
        return status if status is not None else 1
    sc.stop()
    for r in sorted(results, key=lambda r: r["shard"]):
        print(f"shard {r['shard']}/{a.shards} (attempt {r['attempt']}, {r['host']}): "
              f"copied {r['files_copied']} files, {r['bytes_copied']} B; "
              f"skipped {r['files_skipped']} already there ({r['bytes_skipped']} B); "
              f"{r['retries']} retries; {r['elapsed_s']:.1f}s", flush=True)
    print(json.dumps({"event": "shards", "results": sorted(results, key=lambda r: r["shard"])}),
          flush=True)
    return subprocess.call([a.hbcp, "finalize", a.plan])


if __name__ == "__main__":
    sys.exit(main())
