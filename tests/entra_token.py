"""A stand-in for Entra ID and for the managed-identity endpoint, for tests/azure_auth.rs.

Serves HTTPS on 127.0.0.1:PORT with CERT/KEY and answers any POST (a client-credentials token
request, as to https://login.microsoftonline.com/TENANT/oauth2/v2.0/token) or GET (a managed
identity token request, as to http://169.254.169.254/metadata/identity/oauth2/token) with a
JWT for audience AUD, issued as Entra ID issues them (iss https://sts.windows.net/TENANT/),
valid for an hour. Azurite started with `--oauth basic` checks issuer, audience and lifetime
(not the signature). Each request line is appended to LOG.

  python entra_token.py PORT CERT KEY AUD LOG
"""
import base64
import json
import ssl
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

port, cert, key, aud, log = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
TENANT = "00000000-0000-0000-0000-000000000001"


def b64(d):
    return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()


def jwt():
    now = int(time.time())
    claims = {
        "aud": aud,
        "iss": f"https://sts.windows.net/{TENANT}/",
        "iat": now - 60,
        "nbf": now - 60,
        "exp": now + 3600,
        "oid": "11111111-0000-0000-0000-000000000000",
    }
    return b64({"alg": "RS256", "typ": "JWT"}) + "." + b64(claims) + ".bm90LXNpZ25lZA"


class Handler(BaseHTTPRequestHandler):
    def answer(self):
        now = int(time.time())
        body = json.dumps(
            {
                "access_token": jwt(),
                "token_type": "Bearer",
                "expires_in": 3600,
                "expires_on": str(now + 3600),
                "resource": "https://storage.azure.com",
            }
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with open(log, "a") as f:
            f.write(f"{self.command} {self.path}\n")

    do_GET = answer

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.answer()

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", port), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
server.serve_forever()
