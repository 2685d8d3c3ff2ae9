"""The Spark runner (scripts/spark/hbcp-spark) on a real Spark standalone cluster on 127.0.0.1.

Why: the shards of a plan are meant to run on many machines; this drives them through Spark
itself (a master and two workers started by scripts/spark/cluster.sh, from scripts/test.sh) and
judges the outcome with independent clients: Python's hashlib over local files, the Azure SDK
for Python over Azurite's blobs. It also kills one shard's hbcp mid-copy (kill -9) and proves
that Spark ran the task again, that the target is still exact and that no more was sent twice
than the ranges in flight; and that a storage key passed to the executors is in no Spark log.

Needs HBCP_TEST_SPARK (the master URL) and HBCP_TEST_AZURITE; outside CI, without them, the
tests are skipped. The hbcp binary is HBCP_BIN or target/debug/hbcp.
"""

import hashlib
import http.client
import http.server
import json
import os
import random
import re
import signal
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUNNER = REPO / "scripts/spark/hbcp-spark"
HBCP = Path(os.environ.get("HBCP_BIN", REPO / "target/debug/hbcp"))
# The second Azurite account of scripts/test.sh (AZURITE_ACCOUNTS); its key is test-only.
ACCOUNT, KEY = "hbcpacct2", "aGJjcC1zZWNvbmQtYWNjb3VudC1rZXktZm9yLXRlc3RzLW9ubHkh"
KEY_ENV = "HBCP_AZURE_KEY_HBCPACCT2"
RANGE = 256 * 1024
WORKERS = 4
# A large file is cut into ranges of RANGE: 4 of them, 12 ranges each and a bit.
LARGE = [12 * RANGE + 1000 * i for i in range(4)]
# cluster.sh puts the master's and the workers' UIs on SPARK_UI_PORT and the next two.
DRIVER_UI = int(os.environ.get("SPARK_UI_PORT", "8177")) + 3


def need(var, what):
    v = os.environ.get(var)
    if not v:
        if os.environ.get("CI"):
            pytest.fail(f"{var} is not set: {what} must run under CI (scripts/test.sh starts it)")
        pytest.skip(f"{var} not set: no {what}")
    return v


@pytest.fixture(scope="session")
def master():
    return need("HBCP_TEST_SPARK", "Spark cluster")


@pytest.fixture(scope="session")
def azurite():
    return need("HBCP_TEST_AZURITE", "Azurite")


@pytest.fixture(scope="session")
def source(tmp_path_factory):
    """A generated root of a few hundred files: 300 small ones and 4 large ones cut in ranges."""
    root = tmp_path_factory.mktemp("gen") / "hbase"
    rng = random.Random(22)
    for t in range(3):
        for region in range(4):
            fam = root / f"data/default/t{t}/{rng.getrandbits(128):032x}/cf"
            fam.mkdir(parents=True)
            for i in range(25):
                (fam / f"{rng.getrandbits(128):032x}").write_bytes(rng.randbytes(rng.randint(0, 48 * 1024)))
    big = root / "data/default/big/0123456789abcdef0123456789abcdef/cf"
    big.mkdir(parents=True)
    for i, size in enumerate(LARGE):
        (big / f"{i:032x}").write_bytes(rng.randbytes(size))
    (root / "name with spaces ü=x").write_bytes(b"byte-exact names")
    return root


def digests(root):
    """{relative path: sha256} of every file under root, .hbcp/ (hbcp's own state) left out."""
    out = {}
    for p in root.rglob("*"):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and not rel.startswith(".hbcp/"):
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def data_bytes(root):
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def hbcp(*args, env=None):
    return subprocess.run([str(HBCP), *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def plan(tmp, src, dst, env=None):
    p = tmp / "job.plan"
    r = hbcp("plan", src, dst, "--out", p, "--range-size", f"{RANGE // 1024}KiB", env=env)
    assert r.returncode == 0, r
    return p


def spark(plan_file, master, *extra, env=None, run_args=()):
    """hbcp-spark PLAN --shards 3 --master URL …, the driver's UI beside the cluster's ports."""
    cmd = [str(RUNNER), str(plan_file), "--shards", "3", "--master", master, "--hbcp", str(HBCP),
           "--conf", f"spark.ui.port={DRIVER_UI}", *extra]
    if run_args:
        cmd += ["--", *run_args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def finish(proc, timeout=600):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def shard_results(out):
    line = next(x for x in out.splitlines() if x.startswith('{"event": "shards"'))
    return json.loads(line)["results"]


def cluster_dir(master):
    return REPO / ".tools" / f"spark-{urllib.parse.urlparse(master).port}"


def executor_logs(master, since):
    """The stderr files of the executors started after `since` (one folder per app)."""
    work = cluster_dir(master)
    return [p for p in work.glob("work*/app-*/*/stderr") if p.parent.parent.stat().st_mtime >= since]


def test_three_shards_to_local_disk_are_byte_exact_and_finalized(master, source, tmp_path):
    dst = tmp_path / "dst"
    p = plan(tmp_path, source, dst)
    t0 = time.time() - 1
    code, out, err = finish(spark(p, master))
    assert code == 0, err[-4000:]
    assert "completion manifest written" in out, out[-2000:]
    assert (dst / ".hbcp/manifest.json.zst").is_file()
    # Independent digest: every file, byte for byte.
    assert digests(dst) == digests(source)
    results = shard_results(out)
    assert sorted(r["shard"] for r in results) == [0, 1, 2]
    assert all(r["files_copied"] > 0 for r in results), results
    # Each byte sent once: the shards partition the plan.
    assert sum(r["bytes_copied"] for r in results) == data_bytes(source), results
    # Each task streamed its shard's lines to the executor's log (Spark keeps it per executor).
    logs = "".join(f.read_text(errors="replace") for f in executor_logs(master, t0))
    for i in range(3):
        assert re.search(rf'hbcp shard {i}/3 attempt 0: {{.*"event":"done"', logs), logs[-3000:]


class Counter(http.server.ThreadingHTTPServer):
    """A pass-through proxy to Azurite that counts the bytes of every PUT body (block, blob)."""

    daemon_threads = True

    def __init__(self, upstream):
        self.upstream = urllib.parse.urlparse(upstream)
        self.put_bytes = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), Forward)

    def handle_error(self, request, client_address):
        pass  # the killed hbcp's connections break mid-request: expected, not news

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"


class Forward(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def forward(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        if self.command == "PUT":
            with self.server.lock:
                self.server.put_bytes += n
        up = self.server.upstream
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=120)
        conn.request(self.command, self.path, body=body, headers=dict(self.headers.items()))
        r = conn.getresponse()
        data = r.read()
        conn.close()
        self.send_response_only(r.status, r.reason)
        for k, v in r.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        length = r.getheader("Content-Length") if self.command == "HEAD" else None
        self.send_header("Content-Length", length or str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = forward

    def log_message(self, *args):
        pass


def blob_digests(azurite, container):
    from azure.storage.blob import BlobServiceClient

    svc = BlobServiceClient(f"{azurite}/{ACCOUNT}", credential={"account_name": ACCOUNT,
                                                                 "account_key": KEY})
    c = svc.get_container_client(container)
    out = {}
    for b in c.list_blobs(name_starts_with="hbase/"):
        rel = b.name[len("hbase/"):]
        if rel and not rel.startswith(".hbcp/"):
            out[rel] = hashlib.sha256(c.download_blob(b.name).readall()).hexdigest()
    return out


def test_to_azurite_a_shard_killed_mid_copy_is_retried_exact_and_no_key_is_logged(
        master, azurite, source, tmp_path):
    proxy = Counter(azurite)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    container = f"spark{os.getpid()}"
    dst = f"{proxy.url}/{ACCOUNT}/{container}/hbase"
    env = {KEY_ENV: KEY}
    p = plan(tmp_path, source, dst, env=env)
    events = tmp_path / "events"
    events.mkdir()
    t0 = time.time() - 1
    proc = spark(p, master, "--env", KEY_ENV,
                 "--conf", "spark.eventLog.enabled=true", "--conf", f"spark.eventLog.dir=file://{events}",
                 # hbcp-spark turns speculation off whatever it is told.
                 "--conf", "spark.speculation=true",
                 env=env,
                 run_args=["--workers", str(WORKERS), "--max-bandwidth", "1MiB"])
    # Each shard takes ~7 s at 1 MiB/s. The first shard whose progress line says 1.5 MiB are
    # done: kill -9 its hbcp (the pid its task logged), as if the process had crashed.
    killed = None
    deadline = time.time() + 300
    while killed is None and proc.poll() is None and time.time() < deadline:
        for f in executor_logs(master, t0):
            text = f.read_text(errors="replace")
            for m in re.finditer(r"hbcp shard (\d)/3 attempt 0: hbcp pid (\d+)", text):
                shard, pid = m.groups()
                done = re.findall(rf'hbcp shard {shard}/3 attempt 0: {{"bytes_done":(\d+)', text)
                if done and int(done[-1]) >= 6 * RANGE:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                    assert str(p.name).encode() in cmdline[2] and f"{shard}/3".encode() in cmdline
                    os.kill(int(pid), signal.SIGKILL)
                    killed = int(shard)
                    break
            if killed is not None:
                break
        time.sleep(0.05)
    code, out, err = finish(proc)
    proxy.shutdown()
    assert killed is not None, "no shard was killed mid-copy: " + err[-3000:]
    assert code == 0, err[-4000:]
    assert "completion manifest written" in out, out[-2000:]
    # Spark ran the killed shard's task again, and only that one.
    results = shard_results(out)
    assert {r["shard"]: r["attempt"] for r in results} == {0: 0, 1: 0, 2: 0, killed: 1}, results
    # Azure's own SDK reads the blobs: the target is the source, byte for byte.
    assert blob_digests(azurite, container) == digests(source)
    # Sent twice: at most one range per worker in flight at the kill, plus hbcp's own small
    # objects (shard results, block lists, the completion manifest: < 64 KiB).
    resent = proxy.put_bytes - data_bytes(source)
    print(f"spark kill test: shard {killed}/3 killed, retried; {proxy.put_bytes} bytes put for "
          f"{data_bytes(source)} of data: {resent} sent twice or hbcp's own "
          f"(bound {WORKERS} workers x {RANGE} + 64 KiB)")
    assert resent <= WORKERS * RANGE + 64 * 1024, f"{resent} bytes sent twice"
    # No secret anywhere Spark writes: event log (its UI's data), master, worker and executor
    # logs, the driver's output, the plan. The forwarded variable is there, redacted.
    logs = [*events.rglob("*"), *cluster_dir(master).rglob("*"), p]
    seen = [str(f) for f in logs if f.is_file() and KEY.encode() in f.read_bytes()]
    assert not seen, f"the key is in {seen}"
    assert KEY not in out and KEY not in err
    ev = "".join(f.read_text() for f in events.rglob("*") if f.is_file())
    assert re.search(rf'"spark\.executorEnv\.{KEY_ENV}":"\*+\(redacted\)"', ev), ev[:2000]
    assert '"spark.speculation":"false"' in ev


def test_a_shard_that_fails_every_attempt_exits_with_its_status_and_skips_finalize(
        master, tmp_path):
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "a/f").write_bytes(b"x" * 1000)
    p = plan(tmp_path, src, tmp_path / "dst")
    (src / "a/f").unlink()
    (src / "a").rmdir()
    src.rmdir()
    code, out, err = finish(spark(p, master, "--max-attempts", "1"))
    # (spark-submit merges the driver's stderr into its stdout)
    assert code == 2, out[-3000:]
    assert re.search(r"hbcp-spark: a shard failed every attempt: .*hbcp shard \d/3 attempt 0: "
                     r"hbcp run failed \(exit status 2\)", out), out[-3000:]
    assert "does not exist" in out
    assert "completion manifest" not in out + err
    assert not (tmp_path / "dst/.hbcp/manifest.json.zst").exists()


@pytest.mark.parametrize("args, says", [
    (["--shards", "3", "--master", "spark://127.0.0.1:1"], "no such plan file"),
    (["PLAN", "--shards", "0", "--master", "spark://127.0.0.1:1"], "--shards '0'"),
    (["PLAN", "--shards", "3"], "--master"),
    (["PLAN", "--shards", "3", "--master", "x", "--bogus"], "--bogus: unknown option"),
    (["PLAN", "--shards", "3", "--master", "x", "--hbcp", "/nonexistent/hbcp"], "no hbcp binary"),
    (["PLAN", "--shards", "3", "--master", "x", "--env", "HBCP_SPARK_UNSET_FOR_TEST"], "not set"),
    (["PLAN", "--shards", "3", "--master", "x", "--env", "A=B"], "--env 'A=B'"),
])
def test_bad_arguments_are_refused_with_one_line_and_exit_2(tmp_path, args, says):
    p = tmp_path / "job.plan"
    p.write_text("not read: the arguments are refused first")
    argv = [str(p) if a == "PLAN" else a for a in args]
    if args[0] != "PLAN":
        argv = [str(tmp_path / "missing.plan"), *argv]
    r = subprocess.run([str(RUNNER), *argv, *(["--hbcp", str(HBCP)] if "--hbcp" not in args else [])],
                       capture_output=True, text=True)
    assert r.returncode == 2, r
    assert says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_help_names_every_option():
    r = subprocess.run([str(RUNNER), "--help"], capture_output=True, text=True)
    assert r.returncode == 0, r
    for opt in ["--shards", "--master", "--hbcp", "--env", "--conf", "--max-attempts", "-- ARGS"]:
        assert opt in r.stdout, r.stdout
