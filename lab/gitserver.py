"""A Git smart-HTTP server for the tests: ``git http-backend`` (Git's own) behind basic auth.

``python -m lab.gitserver ROOT PORT USER`` with the token on stdin (never in argv)
serves the bare repositories under ROOT on 127.0.0.1:PORT: ``/public/...`` to anyone,
``/private/...`` only with USER and the token. A process of its own with plain threads (the
test process runs under gevent).
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def handler(root: str, expected: str) -> type[BaseHTTPRequestHandler]:
    class Git(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            sys.stderr.write(
                f"{self.command} {self.path.split('?')[0]} {args[1] if len(args) > 1 else ''}\n"
            )

        def do_GET(self) -> None:
            self._git()

        def do_POST(self) -> None:
            self._git()

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while (size := int(self.rfile.readline().strip() or b"0", 16)) > 0:
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _git(self) -> None:
            path, _, query = self.path.partition("?")
            if path.startswith("/private/") and self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = self._body()
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "GIT_PROJECT_ROOT": root,
                "GIT_HTTP_EXPORT_ALL": "1",
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "REQUEST_METHOD": self.command,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                "REMOTE_ADDR": self.client_address[0],
            }
            result = subprocess.run(
                ["git", "http-backend"], input=body, env=env, capture_output=True
            )
            head, _, payload = result.stdout.partition(b"\r\n\r\n")
            status, headers = 200, []
            for line in head.decode(errors="replace").split("\r\n"):
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.strip().split()[0])
                elif name:
                    headers.append((name, value.strip()))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Git


def main() -> None:
    root, port, user = sys.argv[1:4]
    token = sys.stdin.readline().rstrip("\n")
    expected = "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()
    server = ThreadingHTTPServer(("127.0.0.1", int(port)), handler(root, expected))
    print("listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
