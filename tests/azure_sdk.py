"""The Azure SDK for Python as an independent judge of hbcp's Azure work (tests/azure_auth.rs).

SAS tokens are signed here by Microsoft's own code (azure-storage-blob's generate_*_sas), and
what hbcp wrote is read back here by the SDK, not by hbcp. Installed by scripts/azure-sdk.sh.

  sas-container ENDPOINT ACCOUNT KEY CONTAINER PERMS EXPIRY   print a container (service) SAS
  sas-account   ENDPOINT ACCOUNT KEY PERMS EXPIRY             print an account SAS (blob, sco)
  create        ENDPOINT ACCOUNT KEY CONTAINER                create a container
  digest        ENDPOINT ACCOUNT KEY CONTAINER PREFIX         JSON {key under PREFIX: [size, sha256]}
  count         ENDPOINT ACCOUNT KEY CONTAINER                number of blobs (committed), or -1 if
                                                              the container does not exist
  upload        ENDPOINT ACCOUNT KEY CONTAINER BLOB FILE      write FILE's bytes as block blob BLOB,
                                                              replacing it (a change behind hbcp's back)
  md5s          ENDPOINT ACCOUNT KEY CONTAINER PREFIX         JSON {key under PREFIX: Content-MD5 hex
                                                              or null}, from the blob listing
  rewrite-block ENDPOINT ACCOUNT KEY CONTAINER BLOB INDEX FILE  stage FILE's bytes as committed
                                                              block INDEX of BLOB and commit the
                                                              same block list (one block rewritten)
  local         DIR                                           JSON {path under DIR: [size, sha256]},
                                                              hbcp's own .hbcp folder left out
  crc64         FILE...                                       Azure's CRC-64 of each file (the
                                                              x-ms-content-crc64 value), one a line

ENDPOINT is the account's blob endpoint (http://127.0.0.1:PORT/ACCOUNT); EXPIRY is a number of
seconds from now (negative: already expired).
"""
import base64
import datetime
import hashlib
import json
import sys

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import (
    AccountSasPermissions,
    BlobBlock,
    BlobServiceClient,
    ContainerSasPermissions,
    ResourceTypes,
    generate_account_sas,
    generate_container_sas,
)


def service(endpoint, account, key):
    return BlobServiceClient(
        account_url=endpoint, credential={"account_name": account, "account_key": key}
    )


def expiry(seconds):
    return datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=int(seconds))


def local(root):
    import os

    out = {}
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if not (d == root and x == ".hbcp")]
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                data = fh.read()
            out[os.path.relpath(p, root)] = [len(data), hashlib.sha256(data).hexdigest()]
    print(json.dumps(out, sort_keys=True))


def main(argv):
    if argv[1] == "local":
        return local(argv[2])
    if argv[1] == "crc64":
        # Azure's CRC-64 of each file, as the SDK computes it for x-ms-content-crc64.
        from azure.storage.extensions import checksums

        for path in argv[2:]:
            with open(path, "rb") as fh:
                crc = checksums.crc64.compute(fh.read(), 0)
            print(base64.b64encode(crc.to_bytes(8, "little")).decode())
        return
    cmd, endpoint, account, key = argv[1:5]
    rest = argv[5:]
    if cmd == "sas-container":
        container, perms, secs = rest
        print(
            generate_container_sas(
                account,
                container,
                account_key=key,
                permission=ContainerSasPermissions.from_string(perms),
                expiry=expiry(secs),
            )
        )
    elif cmd == "sas-account":
        perms, secs = rest
        print(
            generate_account_sas(
                account,
                account_key=key,
                resource_types=ResourceTypes(service=True, container=True, object=True),
                permission=AccountSasPermissions.from_string(perms),
                expiry=expiry(secs),
            )
        )
    elif cmd == "create":
        (container,) = rest
        service(endpoint, account, key).create_container(container)
    elif cmd == "digest":
        container, prefix = rest
        c = service(endpoint, account, key).get_container_client(container)
        prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        out = {}
        for b in c.list_blobs(name_starts_with=prefix):
            if b.name[len(prefix):].startswith(".hbcp/"):
                continue
            data = c.download_blob(b.name).readall()
            out[b.name[len(prefix):]] = [len(data), hashlib.sha256(data).hexdigest()]
        print(json.dumps(out, sort_keys=True))
    elif cmd == "md5s":
        container, prefix = rest
        c = service(endpoint, account, key).get_container_client(container)
        prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        out = {}
        for b in c.list_blobs(name_starts_with=prefix):
            m = b.content_settings.content_md5
            out[b.name[len(prefix):]] = bytes(m).hex() if m else None
        print(json.dumps(out, sort_keys=True))
    elif cmd == "count":
        (container,) = rest
        c = service(endpoint, account, key).get_container_client(container)
        try:
            print(sum(1 for _ in c.list_blobs()))
        except ResourceNotFoundError:
            print(-1)
    elif cmd == "rewrite-block":
        # Replace block INDEX of a committed block blob by the bytes of PATH: the same block
        # list committed again, one block staged anew (no Content-MD5 for the blob).
        container, blob, index, path = rest
        b = service(endpoint, account, key).get_blob_client(container, blob)
        committed, _ = b.get_block_list("committed")
        ids = [blk.id for blk in committed]
        with open(path, "rb") as fh:
            b.stage_block(ids[int(index)], fh.read())
        b.commit_block_list([BlobBlock(block_id=i) for i in ids])
    elif cmd == "upload":
        container, blob, path = rest
        c = service(endpoint, account, key).get_container_client(container)
        with open(path, "rb") as fh:
            c.upload_blob(blob, fh.read(), overwrite=True)
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)
