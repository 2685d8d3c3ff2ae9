#!/usr/bin/env bash
# CI's check of the release (scripts/test.sh runs it; RELEASE=0 there skips it): builds it with
# scripts/release.sh, then uses it as an operator would. The binary must be stripped, need glibc
# 2.17 at most (release.sh refuses more), and copy the bundled sample byte for byte (judged by
# cmp, not by hbcp); the .deb must install, answer `hbcp --version` with a commit, give
# `man -w hbcp`, and remove cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(bash scripts/release.sh | tail -n1)
echo "release-check: $bin"

if readelf -S "$bin" | grep -q '\.symtab'; then
  echo "release-check: $bin is not stripped" >&2; exit 1
fi
# A clean environment: what a head node has, not this build's.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
env -i PATH=/usr/bin:/bin HOME="$tmp" "$bin" copy examples/hbase-sample "$tmp/copy" --progress none
# Every table file of the sample is at the target, equal (WALs and transient files are left
# out by design; data/ holds neither in the sample).
(cd examples/hbase-sample && find data .hbase-snapshot hbase.id hbase.version -type f) | while IFS= read -r f; do
  cmp -s "examples/hbase-sample/$f" "$tmp/copy/$f" || { echo "release-check: $f differs or is missing" >&2; exit 1; }
done
echo "release-check: the release binary copied examples/hbase-sample; every file equal (cmp)"

if [ "${DEB:-1}" != 0 ]; then
  deb=$(ls -t target/dist/hbcp_*_amd64.deb | head -n1)
  sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
  command -v man >/dev/null || { $sudo apt-get update -qq && $sudo apt-get install -y -qq man-db >/dev/null; }
  if dpkg-query -W -f='${Status}' hbcp 2>/dev/null | grep -q 'ok installed'; then
    echo "release-check: a package hbcp is installed already; not touching it" >&2; exit 1
  fi
  $sudo dpkg -i "$deb" >/dev/null
  remove() { $sudo dpkg -r hbcp >/dev/null; }
  trap 'remove; rm -rf "$tmp"' EXIT
  /usr/bin/hbcp --version | grep -Eq '^commit: [0-9a-f]{12}$' || { echo "release-check: the installed hbcp --version names no commit" >&2; /usr/bin/hbcp --version >&2; exit 1; }
  man -w hbcp >/dev/null && man -w hbcp-copy >/dev/null
  [ -f /usr/share/bash-completion/completions/hbcp ]
  echo "release-check: $deb installs /usr/bin/hbcp, $(man -w hbcp), completions; removed again"
fi
