#!/usr/bin/env bash
# The Azure SDK for Python (azure-storage-blob), an independent client for the tests that judge
# what hbcp reads and writes on Azurite (page blobs written as hadoop-azure writes them).
#   eval "$(scripts/azure-sdk.sh)"   # installs it into .tools/venv if missing
# Prints HBCP_TEST_AZURE_PY, the Python that has it.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.tools/venv
if ! "$venv/bin/python" -c 'import azure.storage.blob' 2>/dev/null; then
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet 'azure-storage-blob==12.*' >&2
fi
echo "export HBCP_TEST_AZURE_PY=$PWD/$venv/bin/python"
