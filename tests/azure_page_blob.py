#!/usr/bin/env python3
"""Writes local files as page blobs in hadoop-azure's format, with the Azure SDK for Python (an
independent client), as HBase on WASB keeps its WALs (fs.azure.page.blob.dir):

  512-byte pages, each opening with a 2-byte big-endian count of the data bytes that follow
  (at most 510), the last page partial; the blob preallocated larger than the pages written.

Usage: azure_page_blob.py CONNECTION_STRING CONTAINER BLOB=FILE...
Checks, through the SDK, that each blob is a page blob larger than its file.
"""
import sys

from azure.storage.blob import BlobServiceClient

PAGE, DATA = 512, 510


def pages(data):
    out = bytearray()
    for i in range(0, len(data), DATA):
        chunk = data[i:i + DATA]
        page = len(chunk).to_bytes(2, "big") + chunk
        out += page + bytes(PAGE - len(page))
    return bytes(out)


def main():
    conn, container = sys.argv[1], sys.argv[2]
    svc = BlobServiceClient.from_connection_string(conn)
    cc = svc.get_container_client(container)
    for arg in sys.argv[3:]:
        name, path = arg.split("=", 1)
        with open(path, "rb") as f:
            data = f.read()
        raw = pages(data)
        # Preallocated as hadoop-azure does: more than what is written.
        size = len(raw) + 64 * 1024
        blob = cc.get_blob_client(name)
        blob.create_page_blob(size)
        for off in range(0, len(raw), 4 * 1024 * 1024):
            part = raw[off:off + 4 * 1024 * 1024]
            blob.upload_page(part, offset=off, length=len(part))
        props = blob.get_blob_properties()
        assert props.blob_type == "PageBlob", (name, props.blob_type)
        assert props.size == size and props.size > len(data), (name, props.size, len(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
