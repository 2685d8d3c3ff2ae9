"""boto3 as an independent judge of hbcp's S3 work (tests/target_changed.rs), against moto.

The endpoint and credentials come from the environment (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID…,
as scripts/test.sh sets them). boto3 is installed with moto by scripts/moto.sh.

  put     BUCKET KEY FILE     write FILE's bytes as object KEY, replacing it
  digest  BUCKET PREFIX       JSON {key under PREFIX: [size, sha256]}, hbcp's .hbcp left out
"""
import hashlib
import json
import sys

import boto3


def main(argv):
    s3 = boto3.client("s3")
    cmd, bucket = argv[1:3]
    if cmd == "put":
        key, path = argv[3:5]
        with open(path, "rb") as fh:
            s3.put_object(Bucket=bucket, Key=key, Body=fh.read())
    elif cmd == "digest":
        prefix = argv[3].strip("/") + "/" if argv[3].strip("/") else ""
        out = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for o in page.get("Contents", []):
                name = o["Key"][len(prefix):]
                if name.startswith(".hbcp/"):
                    continue
                data = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
                out[name] = [len(data), hashlib.sha256(data).hexdigest()]
        print(json.dumps(out, sort_keys=True))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)
