"""Kubernetes API clients from a kubeconfig context, with no key material in a file on disk.

The ``kubernetes`` package's own loader writes ``client-key-data`` and ``client-certificate-data``
to files in the temp directory and removes them only at interpreter exit, so a killed command,
or one that ``exec``s kubectl, leaves the key behind. Here the certificate, key and CA live in
memory-backed files (``memfd_create``): they have no name in any directory, are closed on exec,
and vanish with the process however it ends.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

try:  # the C loader: a multi-megabyte kubeconfig parses in milliseconds, not minutes
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - PyYAML without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]


class KubeconfigError(Exception):
    """The kubeconfig cannot give a client for the context; the message says why."""


def _memory_file(name: str, content: bytes) -> str:
    """A path to ``content`` that exists only in this process's memory (Linux memfd)."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    os.write(fd, content)
    os.lseek(fd, 0, os.SEEK_SET)
    # The descriptor stays open for the life of the process: urllib3 reopens the path for every
    # new connection. /proc/self/fd/N resolves in this process only.
    return f"/proc/self/fd/{fd}"


def _entry(entries: Any, name: str, kind: str, file: Path) -> Mapping[str, Any]:
    for entry in entries or []:
        if isinstance(entry, Mapping) and entry.get("name") == name:
            return entry.get(kind) or {}
    raise KubeconfigError(f"{file}: no {kind} named {name!r}")


def _data_or_file(section: Mapping[str, Any], key: str, base: Path) -> bytes | None:
    data = section.get(f"{key}-data")
    if data:
        return base64.b64decode(data)
    path = section.get(key)
    if path:
        return (base / Path(path).expanduser()).read_bytes()
    return None


def read_kubeconfig(file: Path) -> Mapping[str, Any]:
    """Parse a kubeconfig file (a regular file only: a FIFO or device would block)."""
    try:
        if not file.is_file():
            raise KubeconfigError(f"{file}: not a regular file")
        document = yaml.load(file.read_bytes(), Loader=_Loader)
    except (OSError, yaml.YAMLError) as exc:
        raise KubeconfigError(f"{file}: cannot read: {type(exc).__name__}") from None
    if not isinstance(document, Mapping):
        raise KubeconfigError(f"{file}: not a kubeconfig (no mapping at the top)")
    return document


def configuration(file: Path, context: str) -> client.Configuration:
    """A client configuration for ``context`` of ``file`` with certificates kept in memory."""
    document = read_kubeconfig(file)
    ctx = _entry(document.get("contexts"), context, "context", file)
    cluster = _entry(document.get("clusters"), ctx.get("cluster", ""), "cluster", file)
    user = _entry(document.get("users"), ctx.get("user", ""), "user", file)
    if "exec" in user or "auth-provider" in user:
        raise KubeconfigError(
            f"{file}: user of context {context!r} uses an exec or auth-provider plugin; "
            "use a context with a client certificate or a token"
        )
    base = file.parent
    config = client.Configuration()
    config.host = str(cluster.get("server", "")).rstrip("/")
    if not config.host:
        raise KubeconfigError(f"{file}: cluster of context {context!r} has no server")
    config.verify_ssl = not cluster.get("insecure-skip-tls-verify", False)
    if cluster.get("tls-server-name"):
        config.tls_server_name = cluster["tls-server-name"]
    try:
        ca = _data_or_file(cluster, "certificate-authority", base)
        cert = _data_or_file(user, "client-certificate", base)
        key = _data_or_file(user, "client-key", base)
        token = user.get("token") or (
            (base / Path(user["tokenFile"]).expanduser()).read_text().strip()
            if user.get("tokenFile")
            else None
        )
    except (OSError, ValueError) as exc:
        raise KubeconfigError(f"{file}: context {context!r}: {type(exc).__name__}") from None
    if ca:
        config.ssl_ca_cert = _memory_file("kube-ca", ca)
    if cert and key:
        config.cert_file = _memory_file("kube-client-cert", cert)
        config.key_file = _memory_file("kube-client-key", key)
    if token:
        config.api_key = {"authorization": f"Bearer {token}"}
    if user.get("username") and user.get("password"):
        config.username, config.password = user["username"], user["password"]
    return config


def api_client(file: Path, context: str) -> client.ApiClient:
    """An API client for ``context`` of ``file``; see ``configuration``."""
    return client.ApiClient(configuration(file, context))
