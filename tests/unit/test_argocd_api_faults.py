"""The Argo CD client against answers that are not Argo CD's: each a constructed fault (named
fault injection) served by a loopback HTTP server, since a real argocd-server never sends them.

A login portal's HTML, malformed, truncated or deeply nested JSON, a body that is not UTF-8, a
list or a string where an object belongs, an answer without end, one that drips, and error
bodies that echo the request (with the password) or carry terminal escapes. Every one must end
as one ``ArgoCDError`` line (no traceback, within its bound, never the canary), through the
client itself and through a real operator command in a child process.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from local.argocd.api import MAX_ANSWER, ArgoCDError, Client

REPO = Path(__file__).resolve().parents[2]
CANARY = "canary-pw-7f3e91"
Answer = Callable[[http.server.BaseHTTPRequestHandler, bytes], None]


def _send(
    handler: http.server.BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    content_type: str = "application/json",
    length: int | None = None,
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body) if length is None else length))
    handler.end_headers()
    handler.wfile.write(body)


def _endless(handler: http.server.BaseHTTPRequestHandler, _: bytes) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.end_headers()
    chunk = b"[" + b"0," * 32767
    sent = 0
    try:
        while sent <= MAX_ANSWER * 2:  # bounded: twice the cap is enough to prove the cut
            handler.wfile.write(chunk)
            sent += len(chunk)
    except OSError:
        pass  # the client stopped reading: what the cap is for


def _drip(handler: http.server.BaseHTTPRequestHandler, _: bytes) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", "100")
    handler.end_headers()
    try:
        for _byte in range(20):  # a byte every 0.5 s: each read well inside any socket timeout
            handler.wfile.write(b" ")
            handler.wfile.flush()
            time.sleep(0.5)
    except OSError:
        pass


FAULTS: dict[str, tuple[Answer, str]] = {
    "html portal": (
        lambda h, b: _send(h, 200, b"<html><body>Sign in to the proxy</body></html>", "text/html"),
        "text/html, not Argo CD's JSON",
    ),
    "malformed json": (lambda h, b: _send(h, 200, b'{"token": '), "not JSON"),
    "truncated": (
        lambda h, b: _send(h, 200, b'{"token": "abc', length=400),
        "was cut short",
    ),
    "deep nesting": (lambda h, b: _send(h, 200, b"[" * 100000 + b"]" * 100000), "nested deeper"),
    "not utf-8": (lambda h, b: _send(h, 200, b'{"token": "\xff\xfe"}'), "not UTF-8"),
    "list": (lambda h, b: _send(h, 200, b"[1, 2, 3]"), "JSON list, not an object"),
    "string": (lambda h, b: _send(h, 200, b'"token"'), "JSON str, not an object"),
    "token not a string": (lambda h, b: _send(h, 200, b'{"token": {"a": 1}}'), "without a token"),
    "endless": (_endless, "larger than 16 MB"),
    "drip": (_drip, "within 3 s"),
    "echo in error": (
        lambda h, b: _send(h, 500, json.dumps({"message": f"bad request: {b.decode()}"}).encode()),
        "Argo CD failed POST /api/v1/session (500): bad request:",
    ),
    "escapes in error": (
        lambda h, b: _send(h, 400, b'{"message": "\\u001b[2J\\u001b]0;owned\\u0007boom"}'),
        "boom",
    ),
    "html error": (
        lambda h, b: _send(h, 502, b"<html>\x1b[31mBad gateway " + b + b"</html>", "text/html"),
        "502",
    ),
}


class _Handler(http.server.BaseHTTPRequestHandler):
    answer: Answer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).answer(self, body)

    do_GET = do_POST

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def fault_server() -> Iterator[Callable[[str], str]]:
    servers: list[http.server.ThreadingHTTPServer] = []

    def serve(name: str) -> str:
        handler = type("Handler", (_Handler,), {"answer": staticmethod(FAULTS[name][0])})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"127.0.0.1:{server.server_address[1]}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("fault", list(FAULTS))
def test_the_client_turns_each_fault_into_one_line(
    fault: str, fault_server: Callable[[str], str]
) -> None:
    client = Client(f"http://{fault_server(fault)}", timeout=3)
    started = time.monotonic()
    with pytest.raises(ArgoCDError) as raised:
        client.login("admin", CANARY, "ARGOCD_PASSWORD")
    message = str(raised.value)
    assert FAULTS[fault][1] in message, message
    assert CANARY not in message
    assert "\n" not in message and "\x1b" not in message and "\x07" not in message
    assert len(message) < 700
    assert time.monotonic() - started < 15


def test_the_commands_deadline_holds_every_request(fault_server: Callable[[str], str]) -> None:
    client = Client(f"http://{fault_server('drip')}", timeout=60, deadline=time.monotonic() + 2)
    started = time.monotonic()
    with pytest.raises(ArgoCDError, match=r"within (2|1\.\d+) s: check the server address"):
        client.version()
    assert time.monotonic() - started < 5
    with pytest.raises(ArgoCDError, match="deadline passed before GET /api/version"):
        client.version()


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_command_ends_each_fault_in_one_line(
    fault: str, fault_server: Callable[[str], str], tmp_path: Path
) -> None:
    sites = tmp_path / "sites"
    shutil.copytree(REPO / "sites/lab", sites / "lab")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "K3S_", "ARGOCD_"))}
    environ.update(
        HOME=str(tmp_path),
        TIROSH_SITES_DIR=str(sites),
        ARGOCD_SERVER=fault_server(fault),
        ARGOCD_LOGIN_ARGS="--plaintext",
        ARGOCD_AUTO_PORT_FORWARD="false",
        ARGOCD_PASSWORD=CANARY,
        TIROSH_COMMAND_DEADLINE="4",
    )
    result = subprocess.run(
        [sys.executable, "-m", "local", "argocd/repo/list", "lab"],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    assert CANARY not in output
    failures = [x for x in result.stderr.splitlines() if x and not x.startswith("warning: ")]
    assert len(failures) == 1, output
    assert not any(c in output for c in "\x1b\x07")
