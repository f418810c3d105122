"""Git/Helm repositories and credential templates a site registers in Argo CD.

``sites/<site>/argocd/repositories.toml``::

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

No secret value is ever in this file: only where to take it from. Pure: bodies for the API are
built from the declarations plus the secret values the caller read.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from tirosh.site import Problem, SiteError
from tirosh.sitefile import Entries, load_toml, read_entries

__all__ = [
    "DEFAULT_TOKEN_ENV",
    "REPOSITORIES_FILE",
    "Credentials",
    "KnownHost",
    "Repository",
    "covering_template",
    "known_hosts_for",
    "load_repositories",
    "parse_known_host",
    "parse_repositories",
    "repo_creds_body",
    "repository_body",
    "ssh_host",
]

REPOSITORIES_FILE: Final = "argocd/repositories.toml"
DEFAULT_TOKEN_ENV: Final = "GITHUB_TOKEN"
_REPO_KEYS: Final = (
    "name",
    "url",
    "type",
    "username",
    "token_env",
    "ssh_key_file",
    "ssh_known_hosts",
)
_CREDS_KEYS: Final = ("url", "username", "token_env", "ssh_key_file", "ssh_known_hosts")
_TYPES: Final = ("git", "helm")
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


def _known_hosts_name(host: str, port: int) -> str:
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
    name = _known_hosts_name(host, port)
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


def _credentials(entry: Entries, url: str, home: str | None) -> Credentials:
    username = entry.string("username")
    key_file = entry.string("ssh_key_file")
    token_env = entry.env_name("token_env")
    pinned = []
    for index, line in enumerate(entry.string_list("ssh_known_hosts") or []):
        parsed = parse_known_host(line)
        if parsed is None:
            entry.problem(
                f"ssh_known_hosts[{index}]",
                "must be a known_hosts line 'HOST KEYTYPE BASE64KEY' (as ssh-keyscan prints)",
            )
        else:
            pinned.append(parsed)
    is_ssh = ssh_host(url) is not None
    if is_ssh:
        if username is not None or token_env is not None:
            entry.problem(
                "username", "SSH URLs authenticate with ssh_key_file, not a username/token"
            )
        host_port = ssh_host(url)
        assert host_port is not None
        name = _known_hosts_name(*host_port)
        for index, known in enumerate(pinned):
            if known.host != name:
                entry.problem(
                    f"ssh_known_hosts[{index}]", f"is for {known.host}, the URL's host is {name}"
                )
    else:
        if key_file is not None or pinned:
            entry.problem("ssh_key_file", "only for ssh:// or user@host:path URLs")
        if token_env is not None and username is None:
            entry.problem("token_env", "needs a username (the token is the password)")
    if username is not None and token_env is None:
        token_env = DEFAULT_TOKEN_ENV
    path = None
    if key_file is not None:
        if home and (key_file == "~" or key_file.startswith("~/")):
            key_file = home + key_file[1:]
        path = Path(key_file).expanduser()
        if not path.is_absolute():
            entry.problem("ssh_key_file", f"must be an absolute path or ~/..., got {key_file!r}")
    return Credentials(username, token_env if not is_ssh else None, path, tuple(pinned))


def _url_problem(url: str) -> str | None:
    if ssh_host(url) is not None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return f"must be https://..., ssh://... or user@host:path, got {url!r}"
    if parts.username or parts.password:
        return "must not carry credentials: use username and token_env"
    return None


def parse_repositories(
    data: Mapping[str, Any], file: str, problems: list[Problem], home: str | None = None
) -> tuple[list[Repository], list[Template]]:
    """Repositories and templates of a parsed repositories.toml, problems recorded."""
    tables = ("repositories", "credentials")
    repositories, templates = [], []
    for entry in read_entries(data, "repositories", file, tables, problems):
        entry.allow(_REPO_KEYS)
        name, url = entry.string("name", required=True), entry.string("url", required=True)
        kind = entry.string("type", default="git")
        if kind not in _TYPES:
            entry.problem("type", f"must be one of {', '.join(_TYPES)}, got {kind!r}")
        if url is not None and (reason := _url_problem(url)):
            entry.problem("url", reason)
            url = None
        if url is None or name is None:
            continue
        credentials = _credentials(entry, url, home)
        if kind == "helm" and credentials.kind == "ssh":
            entry.problem("url", "Helm repositories are served over HTTP(S)")
        repositories.append(Repository(name, url, kind or "git", credentials))
    for entry in (
        read_entries(data, "credentials", file, tables, problems) if "credentials" in data else []
    ):
        entry.allow(_CREDS_KEYS)
        url = entry.string("url", required=True)
        if url is not None and (reason := _url_problem(url)):
            entry.problem("url", reason)
            url = None
        if url is None:
            continue
        credentials = _credentials(entry, url, home)
        if credentials.kind == "none":
            entry.problem("username", "a template needs credentials: username or ssh_key_file")
        templates.append(Template(url, credentials))
    _check_unique(file, repositories, templates, problems)
    return repositories, templates


def _check_unique(
    file: str, repositories: list[Repository], templates: list[Template], problems: list[Problem]
) -> None:
    for label, values, table in (
        ("name", [r.name for r in repositories], "repositories"),
        ("url", [r.url for r in repositories], "repositories"),
        ("url", [t.url for t in templates], "credentials"),
    ):
        for index, value in enumerate(values):
            if value in values[:index]:
                problems.append(
                    Problem(file, f"{table}[{index}].{label}", f"{value!r} is declared twice")
                )


def load_repositories(
    site_dir: Path, environ: Mapping[str, str], file: str | None = None
) -> tuple[list[Repository], list[Template]]:
    """The site's repositories and templates (none when the file is absent); SiteError else."""
    file = file or f"sites/{site_dir.name}/{REPOSITORIES_FILE}"
    problems: list[Problem] = []
    data = load_toml(site_dir / REPOSITORIES_FILE, file, problems)
    result = (
        parse_repositories(data, file, problems, environ.get("HOME"))
        if data is not None
        else ([], [])
    )
    if problems:
        raise SiteError(problems)
    return result


# --------------------------------------------------------------------------- API bodies


def _secret_fields(credentials: Credentials, secret: str | None) -> dict[str, str]:
    if credentials.kind == "ssh":
        return {"sshPrivateKey": secret or ""}
    if credentials.kind == "token":
        return {"username": credentials.username or "", "password": secret or ""}
    return {}


def repository_body(repository: Repository, secret: str | None) -> dict[str, Any]:
    """The ``POST /api/v1/repositories?upsert=true`` body.

    It always carries the credentials: Argo CD writes every credential key an upsert omits as
    an empty string, so an upsert without them would wipe the stored ones. ``type`` is explicit
    because the server compares against a stored object whose empty type became ``git``.
    """
    body: dict[str, Any] = {
        "repo": repository.url,
        "name": repository.name,
        "type": repository.type,
    }
    body.update(_secret_fields(repository.credentials, secret))
    return body


def repo_creds_body(template: Template, secret: str | None) -> dict[str, Any]:
    """The ``POST /api/v1/repocreds?upsert=true`` body of a credential template."""
    body: dict[str, Any] = {"url": template.url, "type": "git"}
    body.update(_secret_fields(template.credentials, secret))
    return body
