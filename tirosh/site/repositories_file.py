"""The reader of ``argocd/repositories.toml``: repositories and credential templates.

The file's shape is in ``tirosh.repositories``. Every value goes through the same table reader
as the other site files (no control characters, escapes or line breaks); URLs carry no
credentials in any form, and two spellings of one repository are one repository.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from tirosh import urls
from tirosh.repositories import (
    DEFAULT_TOKEN_ENV,
    REPOSITORIES_FILE,
    TYPES,
    Credentials,
    KnownHost,
    Repository,
    Template,
    known_hosts_name,
    parse_known_host,
    ssh_host,
)
from tirosh.site.reader import Report, Table, read_toml

__all__ = ["REPOSITORIES_FILE", "canonical_url", "read_repositories"]

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
_TABLES: Final = ("repositories", "credentials")


def read_repositories(
    report: Report, path: Path
) -> tuple[tuple[Repository, ...], tuple[Template, ...]]:
    """The repositories and templates of the file (none when it is absent); problems recorded."""
    top = read_toml(report, path, optional=True)
    if top is None:
        return (), ()
    top.allow_tables(_TABLES)
    home = report.environ.get("HOME")
    repositories = [r for r in (_repository(e, home) for e in top.entries("repositories")) if r]
    templates = [t for t in (_template(e, home) for e in top.entries("credentials")) if t]
    _check_unique(top, repositories, templates)
    return tuple(repositories), tuple(templates)


def _repository(entry: Table, home: str | None) -> Repository | None:
    entry.allow(_REPO_KEYS)
    name, url = entry.string("name", required=True), _url(entry)
    kind = entry.string("type") or "git"
    if kind not in TYPES:
        entry.problem("type", f"must be one of {', '.join(TYPES)}, got {kind!r}")
    if url is None or name is None:
        return None
    credentials = _credentials(entry, url, home)
    if kind == "helm" and credentials.kind == "ssh":
        entry.problem("url", "Helm repositories are served over HTTP(S)")
    return Repository(name, url, kind, credentials)


def _template(entry: Table, home: str | None) -> Template | None:
    entry.allow(_CREDS_KEYS)
    url = _url(entry)
    if url is None:
        return None
    credentials = _credentials(entry, url, home)
    if credentials.kind == "none":
        entry.problem("username", "a template needs credentials: username or ssh_key_file")
    return Template(url, credentials)


def _url(entry: Table) -> str | None:
    url = entry.string("url", required=True)
    if url is not None and (reason := url_problem(url)):
        entry.problem("url", reason)
        return None
    return url


def url_problem(url: str) -> str | None:
    """Why a repository URL cannot be registered, or None."""
    if ssh_host(url) is not None:
        parts = urlsplit(url)
        if parts.scheme == "ssh" and parts.password is not None:
            return "must not carry a password (user:password@): use ssh_key_file"
        return _no_query(url)
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return f"must be https://..., ssh://... or user@host:path, got {url!r}"
    if parts.username or parts.password or "@" in parts.netloc:
        return "must not carry credentials: use username and token_env"
    return urls.url_problem(url) or _no_query(url)


def _no_query(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.query or parts.fragment or "?" in url or "#" in url:
        return "must not have a query or fragment (a token there would show in logs)"
    return None


def canonical_url(url: str) -> str:
    """One spelling per repository: host lowercased, no trailing slash or ``.git``."""
    host_port = ssh_host(url)
    parts = urlsplit(url)
    if host_port is not None and not parts.scheme:
        user, _, rest = url.partition("@")
        host, _, path = rest.partition(":")
        url = f"ssh://{user}@{host.lower()}/{path}"
    elif parts.netloc:
        url = parts._replace(netloc=parts.netloc.lower(), scheme=parts.scheme.lower()).geturl()
    url = url.rstrip("/")
    return url.removesuffix(".git").rstrip("/")


def _credentials(entry: Table, url: str, home: str | None) -> Credentials:
    username = entry.string("username")
    key_file = entry.string("ssh_key_file")
    token_env = entry.env_name("token_env")
    pinned = _pinned(entry)
    host_port = ssh_host(url)
    if host_port is not None:
        if username is not None or token_env is not None:
            entry.problem(
                "username", "SSH URLs authenticate with ssh_key_file, not a username/token"
            )
        name = known_hosts_name(*host_port)
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
        parts = urlsplit(url)
        if username is not None and parts.scheme == "http" and not _loopback(parts.hostname):
            entry.problem("url", "is plain http://: a token would cross the network in clear")
    if username is not None and token_env is None:
        token_env = DEFAULT_TOKEN_ENV
    return Credentials(
        username,
        token_env if host_port is None else None,
        _key_path(entry, key_file, home),
        tuple(pinned),
    )


def _loopback(host: str | None) -> bool:
    """This machine itself (a token to it never crosses a network)."""
    if host is None:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _pinned(entry: Table) -> list[KnownHost]:
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
    return pinned


def _key_path(entry: Table, key_file: str | None, home: str | None) -> Path | None:
    if key_file is None:
        return None
    if home and (key_file == "~" or key_file.startswith("~/")):
        key_file = home + key_file[1:]
    path = Path(os.path.expanduser(key_file))
    if not path.is_absolute():
        entry.problem("ssh_key_file", f"must be an absolute path or ~/..., got {key_file!r}")
    return path


def _check_unique(top: Table, repositories: list[Repository], templates: list[Template]) -> None:
    checks = (
        ("repositories", "name", [(r.name, r.name) for r in repositories]),
        ("repositories", "url", [(canonical_url(r.url), r.url) for r in repositories]),
        ("credentials", "url", [(canonical_url(t.url), t.url) for t in templates]),
    )
    for table, label, values in checks:
        seen: set[str] = set()
        for index, (key, shown) in enumerate(values):
            if key in seen:
                top.problem(f"{table}[{index}].{label}", f"{shown!r} is declared twice")
            seen.add(key)
