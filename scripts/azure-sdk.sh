#!/usr/bin/env bash
# Installs the Azure SDK for Python (azure-storage-blob) into .tools/venv, the venv
# scripts/moto.sh uses, for the tests that judge hbcp's Azure writes with an independent
# client and sign SAS tokens with Microsoft's own signer (tests/azure_sdk.py).
#   eval "$(scripts/azure-sdk.sh)"   # prints: export HBCP_TEST_PYTHON=…/.tools/venv/bin/python
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.tools/venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv" >&2
# azure-storage-extensions: the SDK's CRC-64 (x-ms-content-crc64), the judge of hbcp's.
if ! "$venv/bin/python" -c 'import azure.storage.blob, azure.storage.extensions' 2>/dev/null; then
  "$venv/bin/pip" install --quiet 'azure-storage-blob==12.*' 'azure-storage-extensions==0.1.*' >&2
fi
echo "export HBCP_TEST_PYTHON=$PWD/$venv/bin/python"
