"""A real OpenID Connect provider on loopback for the SSO tests: panva's ``oidc-provider``
(OpenID Certified, from npm; ``lab/oidc/package-lock.json``), run by Node as its own process
over HTTPS with a certificate of a CA made here. ``lab/oidc/provider.mjs`` is its configuration
only: the client Argo CD uses and the test users with their groups.

Why not the lab's Dex: see ``tests/local/test_sso.py`` (the error Argo CD v3.5.8 gives with it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lab import edge
from lab.argocd_harness import Process, free_port, wait_http

OIDC_DIR = Path(__file__).resolve().parent / "oidc"


def npm_packages() -> Path:
    """``lab/oidc/node_modules`` as its lock file says (``npm ci`` when missing or stale)."""
    modules = OIDC_DIR / "node_modules"
    lock = OIDC_DIR / "package-lock.json"
    marker = modules / ".package-lock.json"  # npm writes it on every install
    if not marker.is_file() or marker.stat().st_mtime < lock.stat().st_mtime:
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is missing (Debian: apt-get install npm)")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=OIDC_DIR, check=True)
    return modules


@dataclass(frozen=True)
class Provider:
    issuer: str
    ca_file: Path  # the CA that signed the provider's certificate


@contextmanager
def oidc_provider(
    tmp: Path, client_id: str, client_secret: str, redirect_uri: str, users: Mapping[str, list[str]]
) -> Iterator[Provider]:
    """The provider at ``https://127.0.0.1:<port>``, with one client and ``users`` (name ->
    groups); stopped afterwards."""
    npm_packages()
    tmp.mkdir(parents=True, exist_ok=True)
    secrets = edge.Secrets(tmp / "ca")
    edge.ensure_secrets(secrets)
    cert, key = edge._server_cert(secrets, ["localhost"], "127.0.0.1")
    (tmp / "server.crt").write_bytes(cert)
    key_file = tmp / "server.key"
    key_file.touch(mode=0o600)
    key_file.write_bytes(key)
    port = free_port()
    issuer = f"https://127.0.0.1:{port}"
    config = {
        "issuer": issuer,
        "port": port,
        "cert": str(tmp / "server.crt"),
        "key": str(key_file),
        "clients": [
            {
                "client_id": client_id,
                "client_secret": client_secret,
                "redirect_uris": [redirect_uri],
            }
        ],
        "users": dict(users),
        "cookie_key": os.urandom(16).hex(),
    }
    config_file = tmp / "provider.json"
    config_file.touch(mode=0o600)
    config_file.write_text(json.dumps(config))
    node = shutil.which("node") or "node"
    process = Process(
        [node, str(OIDC_DIR / "provider.mjs"), str(config_file)],
        tmp / "oidc-provider.log",
        {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NODE_ENV": "development"},
        OIDC_DIR,
    )
    try:
        wait_http(f"{issuer}/.well-known/openid-configuration", process)
        yield Provider(issuer, secrets.ca_cert)
    finally:
        process.stop()
