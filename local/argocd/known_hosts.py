"""SSH host keys of the site's repositories: found on the operator's side, added to Argo CD.

A key is pinned in ``repositories.toml`` or found in the operator's known_hosts (never trusted
on first use); it goes to Argo CD's known hosts as ``argocd cert add-ssh`` does.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Mapping
from pathlib import Path

from kubernetes import client

from local.argocd.api import Client
from tirosh import regular_file
from tirosh.errors import OperatorError
from tirosh.plan import Change
from tirosh.repositories import (
    Credentials,
    KnownHost,
    known_hosts_for,
    known_hosts_name,
    parse_known_host,
    ssh_host,
)
from tirosh.subprocesses import minimal_environment

__all__ = ["MissingSecret", "ensure_known_hosts", "host_keys", "stored_known_hosts"]

KNOWN_HOSTS_CONFIGMAP = "argocd-ssh-known-hosts-cm"


class MissingSecret(OperatorError):
    """A credential or host key is not available; the message names where it should come from."""


def _known_hosts_file(environ: Mapping[str, str]) -> Path:
    home = environ.get("HOME") or str(Path.home())
    return Path(environ.get("SSH_KNOWN_HOSTS") or f"{home}/.ssh/known_hosts")


def _operator_host_keys(host: str, port: int, file: Path) -> list[KnownHost]:
    try:
        text = regular_file.read_bytes(file).decode(errors="replace")
    except (OSError, ValueError):  # no readable known_hosts file: nothing known from it
        return []
    found = known_hosts_for(text.splitlines(), host, port)
    if found:
        return found
    # Hashed entries (HashKnownHosts yes): ssh-keygen -F finds them; it prints the matches.
    name = known_hosts_name(host, port)
    run = subprocess.run(
        ["ssh-keygen", "-F", name, "-f", str(file)],
        capture_output=True,
        text=True,
        env=minimal_environment(),
        check=False,
    )
    lines = [
        f"{name} {' '.join(line.split()[1:])}"
        for line in run.stdout.splitlines()
        if line and not line.startswith("#")
    ]
    return known_hosts_for(lines, host, port)


def host_keys(url: str, credentials: Credentials, environ: Mapping[str, str]) -> list[KnownHost]:
    """The SSH host keys for ``url``: pinned in the site, else from the operator's known_hosts."""
    host_port = ssh_host(url)
    if host_port is None:
        return []
    if credentials.ssh_known_hosts:
        return list(credentials.ssh_known_hosts)
    file = _known_hosts_file(environ)
    found = _operator_host_keys(*host_port, file)
    if not found:
        host = host_port[0]
        raise MissingSecret(
            f"{url}: no host key for {host} in {file}: pin it as ssh_known_hosts in "
            f"repositories.toml, or add it to {file} after checking its fingerprint "
            f"(ssh-keyscan {host} | ssh-keygen -lf -)"
        )
    return found


def stored_known_hosts(core: client.CoreV1Api, namespace: str) -> list[KnownHost]:
    """Argo CD's SSH known hosts (ConfigMap argocd-ssh-known-hosts-cm), plain lines only."""
    try:
        config_map = core.read_namespaced_config_map(KNOWN_HOSTS_CONFIGMAP, namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            return []
        raise
    lines = ((config_map.data or {}).get("ssh_known_hosts") or "").splitlines()
    return [k for k in (parse_known_host(line) for line in lines) if k is not None]


def ensure_known_hosts(
    argocd: Client | None, wanted: list[KnownHost], stored: list[KnownHost], dry: bool
) -> list[Change]:
    """Add each wanted key Argo CD does not hold (replace one of the same type that differs)."""
    changes = []
    for key in wanted:
        what = f"SSH known host {key.host} {key.key_type}"
        same_type = [k for k in stored if (k.host, k.key_type) == (key.host, key.key_type)]
        if key in same_type:
            changes.append(Change("known hosts", "unchanged", what))
            continue
        changes.append(Change("known hosts", "update" if same_type else "create", what))
        if not dry and argocd is not None:
            # certData is the key's base64 text, itself base64-encoded as JSON carries bytes.
            data = base64.b64encode(key.key.encode()).decode()
            item = {
                "serverName": key.host,
                "certType": "ssh",
                "certSubType": key.key_type,
                "certData": data,
            }
            argocd.add_ssh_known_hosts([item], upsert=bool(same_type))
    return changes
