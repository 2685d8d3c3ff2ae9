#!/usr/bin/env bash
# Installs Chromium from Debian's packages (apt-get) when it is missing, for the test that
# renders `hbcp report --html` in a real headless browser (tests/report_html.rs).
#   eval "$(scripts/chromium.sh)"   # prints: export HBCP_TEST_CHROMIUM=/usr/bin/chromium
set -euo pipefail
bin=$(command -v chromium || true)
if [ -z "$bin" ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >&2
  bin=$(command -v chromium)
fi
echo "export HBCP_TEST_CHROMIUM=$bin"
