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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from tirosh import regular_file
from tirosh.errors import OperatorError
from tirosh.kubeconfig import read_regular

try:  # the C loader: a multi-megabyte kubeconfig parses in milliseconds, not minutes
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - PyYAML without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]


class KubeconfigError(OperatorError):
    """The kubeconfig cannot give a client for the context; the message says why."""


# The sections whose entries kubectl merges across a KUBECONFIG list, by name.
_SECTIONS = ("clusters", "users", "contexts")


def kubeconfig_files(first: Path, environ: Mapping[str, str] | None = None) -> tuple[Path, ...]:
    """The files kubectl reads for a site: ``first`` (the site's kubeconfig, which is the first
    entry of a KUBECONFIG list when one is set), then the list's other entries, each once. After
    ``eval "$(make -s k3s/kubeconfig/export SITE=…)"`` the site's own files are among them."""
    env = os.environ if environ is None else environ
    entries = [e for e in env.get("KUBECONFIG", "").split(os.pathsep) if e][1:]
    files = [first, *(Path(os.path.abspath(os.path.expanduser(e))) for e in entries)]
    return tuple(dict.fromkeys(files))


def _memory_file(name: str, content: bytes) -> str:
    """A path to ``content`` that exists only in this process's memory (Linux memfd)."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    os.write(fd, content)
    os.lseek(fd, 0, os.SEEK_SET)
    # The descriptor stays open for the life of the process: urllib3 reopens the path for every
    # new connection. /proc/self/fd/N resolves in this process only.
    return f"/proc/self/fd/{fd}"


def _entry(
    merged: Mapping[str, dict[str, tuple[Mapping[str, Any], Path]]],
    section: str,
    name: str,
    where: str,
) -> tuple[Mapping[str, Any], Path]:
    """The body of the named entry and the folder its relative paths resolve against."""
    kind = section[:-1]
    if name not in merged[section]:
        raise KubeconfigError(f"{where}: no {kind} named {name!r}")
    body, base = merged[section][name]
    return body, base


def _data_or_file(section: Mapping[str, Any], key: str, base: Path) -> bytes | None:
    data = section.get(f"{key}-data")
    if data:
        return base64.b64decode(data)
    path = section.get(key)
    if path:
        # Without blocking on a FIFO, like the kubeconfig itself.
        return regular_file.read_bytes(base / os.path.expanduser(path))
    return None


def read_kubeconfig(file: Path) -> Mapping[str, Any] | None:
    """Parse a kubeconfig file; None when it does not exist. A FIFO or device is refused at
    once (opened without blocking, then checked with fstat), never read."""
    try:
        data = read_regular(file)
        if data is None:
            return None
        document = yaml.load(data, Loader=_Loader)
    except ValueError as exc:  # not a regular file
        raise KubeconfigError(f"{file}: {exc}") from None
    except (OSError, yaml.YAMLError) as exc:
        raise KubeconfigError(f"{file}: cannot read: {type(exc).__name__}") from None
    if not isinstance(document, Mapping):
        raise KubeconfigError(f"{file}: not a kubeconfig (no mapping at the top)")
    return document


def _merged(files: Sequence[Path]) -> dict[str, dict[str, tuple[Mapping[str, Any], Path]]]:
    """The entries of ``files`` as kubectl merges a KUBECONFIG list: missing files are skipped
    and the first file to name a cluster, user or context wins."""
    merged: dict[str, dict[str, tuple[Mapping[str, Any], Path]]] = {s: {} for s in _SECTIONS}
    found = False
    for file in files:
        document = read_kubeconfig(file)
        if document is None:
            continue
        found = True
        for section in _SECTIONS:
            kind = section[:-1]
            for entry in document.get(section) or []:
                if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
                    body = entry.get(kind)
                    body = body if isinstance(body, Mapping) else {}
                    merged[section].setdefault(entry["name"], (body, file.parent))
    if not found:
        raise KubeconfigError(f"{', '.join(map(str, files))}: no such file")
    return merged


def configuration(files: Path | Sequence[Path], context: str) -> client.Configuration:
    """A client configuration for ``context`` with certificates kept in memory. ``files``: one
    kubeconfig, or a KUBECONFIG list (see ``kubeconfig_files``) read as kubectl reads it."""
    files = (files,) if isinstance(files, Path) else tuple(files)
    file = ", ".join(map(str, files))  # named in messages
    merged = _merged(files)
    ctx, _ = _entry(merged, "contexts", context, file)
    cluster, cluster_base = _entry(merged, "clusters", ctx.get("cluster", ""), file)
    user, base = _entry(merged, "users", ctx.get("user", ""), file)
    if "exec" in user or "auth-provider" in user:
        raise KubeconfigError(
            f"{file}: user of context {context!r} uses an exec or auth-provider plugin; "
            "use a context with a client certificate or a token"
        )
    config = client.Configuration()
    config.host = str(cluster.get("server", "")).rstrip("/")
    if not config.host:
        raise KubeconfigError(f"{file}: cluster of context {context!r} has no server")
    config.verify_ssl = not cluster.get("insecure-skip-tls-verify", False)
    if cluster.get("tls-server-name"):
        config.tls_server_name = cluster["tls-server-name"]
    try:
        ca = _data_or_file(cluster, "certificate-authority", cluster_base)
        cert = _data_or_file(user, "client-certificate", base)
        key = _data_or_file(user, "client-key", base)
        token = user.get("token") or (
            regular_file.read_text(base / os.path.expanduser(user["tokenFile"])).strip()
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


def api_client(files: Path | Sequence[Path], context: str) -> client.ApiClient:
    """An API client for ``context`` of ``files``; see ``configuration``."""
    return client.ApiClient(configuration(files, context))
