"""Git/Helm repositories and credential templates a site registers in Argo CD.

The site model reads them from ``sites/<site>/argocd/repositories.toml``
(``tirosh.site.repositories_file``)::

    [[repositories]]
    name = "tirosh-gitops"
    url = "https://github.com/tirosh-chain/tirosh-gitops.git"   # public: no credentials

    [[repositories]]
    name = "private"
    url = "https://github.com/org/private.git"
    username = "x-access-token"           # private HTTPS: a username and a token from
    token_env = "GITHUB_TOKEN"            # this variable (default GITHUB_TOKEN) or a prompt

    [[repositories]]
    name = "over-ssh"
    url = "git@git.example.com:org/repo.git"
    ssh_key_file = "~/.ssh/deploy-key"    # a deploy key on the operator's machine
    ssh_known_hosts = ["git.example.com ssh-ed25519 AAAA..."]  # pinned; else ~/.ssh/known_hosts

    [[credentials]]                       # a repo-creds template for every URL under a prefix
    url = "https://github.com/org"
    username = "x-access-token"

No secret value is ever in that file: only where to take it from. Pure: the Secrets Argo CD
must hold for them are built in ``tirosh.argocd_secrets``.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_TOKEN_ENV",
    "REPOSITORIES_FILE",
    "Credentials",
    "KnownHost",
    "Repository",
    "covering_template",
    "known_hosts_for",
    "known_hosts_name",
    "parse_known_host",
    "ssh_host",
]

REPOSITORIES_FILE: Final = "argocd/repositories.toml"
DEFAULT_TOKEN_ENV: Final = "GITHUB_TOKEN"
TYPES: Final = ("git", "helm")
_SCP_URL: Final = re.compile(r"(?P<user>[A-Za-z0-9._-]+)@(?P<host>[A-Za-z0-9.-]+):(?P<path>[^/].*)")
_KEY_TYPES: Final = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)


@dataclass(frozen=True)
class KnownHost:
    """One SSH host key, as Argo CD's known hosts hold it."""

    host: str  # host, or [host]:port for a non-standard port
    key_type: str
    key: str  # the base64 key blob, as in a known_hosts line

    def line(self) -> str:
        return f"{self.host} {self.key_type} {self.key}"


@dataclass(frozen=True)
class Credentials:
    """Where the secret of a repository or template comes from (never the secret itself)."""

    username: str | None = None
    token_env: str | None = None  # private HTTPS
    ssh_key_file: Path | None = None  # SSH
    ssh_known_hosts: tuple[KnownHost, ...] = ()  # pinned; empty: the operator's known_hosts

    @property
    def kind(self) -> str:
        if self.ssh_key_file is not None:
            return "ssh"
        return "token" if self.username is not None else "none"


@dataclass(frozen=True)
class Repository:
    name: str
    url: str
    type: str = "git"
    credentials: Credentials = field(default_factory=Credentials)


@dataclass(frozen=True)
class Template:
    url: str
    credentials: Credentials


def ssh_host(url: str) -> tuple[str, int] | None:
    """(host, port) of an SSH repository URL (``ssh://`` or scp-like ``git@host:path``)."""
    match = _SCP_URL.fullmatch(url)
    if match:
        return match["host"].lower(), 22
    parts = urlsplit(url)
    if parts.scheme == "ssh" and parts.hostname:
        try:
            return parts.hostname.lower(), parts.port or 22
        except ValueError:
            return None
    return None


def known_hosts_name(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def parse_known_host(line: str) -> KnownHost | None:
    """A plain (unhashed) ``host[,host...] type key`` line, for its first host; None if invalid."""
    fields = line.split()
    if len(fields) < 3 or fields[0].startswith(("|", "@", "#")) or fields[1] not in _KEY_TYPES:
        return None
    try:
        base64.b64decode(fields[2], validate=True)
    except (binascii.Error, ValueError):
        return None
    return KnownHost(fields[0].split(",")[0].lower(), fields[1], fields[2])


def known_hosts_for(lines: list[str], host: str, port: int) -> list[KnownHost]:
    """The keys of ``host:port`` among plain known_hosts lines (hashed lines need ssh-keygen -F)."""
    name = known_hosts_name(host, port)
    found = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 3 and name in fields[0].lower().split(","):
            entry = parse_known_host(line)
            if entry is not None:
                found.append(KnownHost(name, entry.key_type, entry.key))
    return found


def covering_template(
    url: str, templates: tuple[Template, ...] | list[Template]
) -> Template | None:
    """The template Argo CD would take credentials from: the longest matching URL prefix."""
    matching = [t for t in templates if url.startswith(t.url.rstrip("/"))]
    return max(matching, key=lambda t: len(t.url), default=None)
