"""The site's repositories and credential templates, as Argo CD's Secrets to apply.

``make argocd/repo/add`` and ``argocd/repo/list`` (``local.commands``). Every secret is
gathered before anything changes: a token from its variable (or a prompt), a deploy key from
its file, SSH host keys pinned in the site or found in the operator's known_hosts
(``local.argocd.known_hosts``). ``declare`` gives each one's Secret
(``tirosh.argocd_secrets``); ``local.argocd.registration`` applies those that differ and has
Argo CD test each new or changed repository (``check_connection``): ``Failed`` prints Argo CD's
message and makes the command exit non-zero.
"""

from __future__ import annotations

import getpass
import time
from collections.abc import Mapping, Sequence
from typing import Final

from local.argocd.api import UNKNOWN_POLL, ArgoCDError, Client
from local.argocd.known_hosts import MissingSecret, host_keys
from tirosh import regular_file
from tirosh.argocd_secrets import DeclaredSecret, repository_secret, template_secret
from tirosh.plan import Connection, connection_state
from tirosh.repositories import Credentials, KnownHost
from tirosh.site import Site

__all__ = [
    "MissingSecret",
    "check_connections",
    "declare",
    "gather_secrets",
    "list_repositories",
    "wanted_host_keys",
]

# A host key just added reaches repo-server through a ConfigMap volume: the kubelet's sync
# period plus its ConfigMap cache TTL, a minute each by default, bound the delay.
KNOWN_HOSTS_SETTLE: Final = 150.0
KNOWN_HOSTS_POLL: Final = 3.0


def _secret(
    credentials: Credentials, what: str, environ: Mapping[str, str], prompt: bool
) -> str | None:
    if credentials.kind == "ssh":
        assert credentials.ssh_key_file is not None
        try:
            return regular_file.read_text(credentials.ssh_key_file)
        except OSError as exc:
            raise MissingSecret(
                f"{what}: cannot read ssh_key_file {credentials.ssh_key_file}: {exc.strerror}"
            ) from None
        except ValueError as exc:  # a FIFO or device (refused without blocking), or not UTF-8
            raise MissingSecret(
                f"{what}: cannot read ssh_key_file {credentials.ssh_key_file}: {exc}"
            ) from None
    if credentials.kind == "token":
        variable = credentials.token_env or ""
        if environ.get(variable):
            return environ[variable]
        if prompt:
            typed = getpass.getpass(f"Token for {what} (user {credentials.username}): ")
            if typed:
                return typed
        raise MissingSecret(
            f"{what}: the token is not set: export {variable} (or .env), or run from a "
            "terminal with --prompts-enabled"
        )
    return None


def gather_secrets(site: Site, environ: Mapping[str, str], prompt: bool) -> dict[str, str | None]:
    """URL -> credential value for every repository and template, before anything changes."""
    secrets: dict[str, str | None] = {}
    problems = []
    declared = [(r.url, r.credentials) for r in site.repositories]
    declared += [(t.url, t.credentials) for t in site.templates]
    for url, credentials in declared:
        try:
            secrets[url] = _secret(credentials, url, environ, prompt)
        except MissingSecret as exc:
            problems.append(str(exc))
    if problems:
        raise MissingSecret("; ".join(problems) + "; nothing was changed")
    return secrets


def declare(site: Site, secrets: Mapping[str, str | None]) -> list[DeclaredSecret]:
    """The Secrets of the site's templates, then repositories, with the credential values of
    ``gather_secrets`` (gathered by the caller, so a prompt is never shown twice)."""
    declared = [template_secret(t, secrets[t.url]) for t in site.templates]
    return declared + [repository_secret(r, secrets[r.url]) for r in site.repositories]


def wanted_host_keys(site: Site, environ: Mapping[str, str]) -> list[KnownHost]:
    """The SSH host keys Argo CD must know for the site's SSH repositories and templates."""
    declared = [(r.url, r.credentials) for r in site.repositories]
    declared += [(t.url, t.credentials) for t in site.templates]
    keys = [k for url, credentials in declared for k in host_keys(url, credentials, environ)]
    return list(dict.fromkeys(keys))


def check_connections(
    argocd: Client, secrets: Sequence[DeclaredSecret], settle: float, key_settle: float = 0.0
) -> list[Connection]:
    """Argo CD's connection test of repositories whose Secrets (or template) were just applied.

    One list with ``forceRefresh``: Argo CD tests every repository it lists at once (a git
    ls-remote each, by repo-server, with the stored credentials or the template's). A read of
    one repository would do the same for all of them, once per repository asked. A Secret
    applied moments ago reaches the API server through its informer: listed again while one is
    missing, up to ``settle`` seconds. A host key just added reaches repo-server through a
    ConfigMap volume, a minute or so later: while repo-server reports one unknown, listed again
    for up to ``key_settle`` seconds (``KNOWN_HOSTS_SETTLE`` after a change).
    """
    if not secrets:
        return []
    started = time.monotonic()
    while True:
        try:
            listed = {str(i.get("repo")): i for i in argocd.list_repositories(force_refresh=True)}
        except ArgoCDError as exc:
            message = exc.api_message or str(exc)
            return [Connection(secret.subject, "Failed", message) for secret in secrets]
        waited = time.monotonic() - started
        if any(s.key not in listed for s in secrets) and waited < settle:
            time.sleep(UNKNOWN_POLL)
            continue
        states = [connection_state(listed.get(s.key)) for s in secrets]
        if any(_host_key_unknown(message) for _, message in states) and waited < key_settle:
            time.sleep(KNOWN_HOSTS_POLL)
            continue
        return [
            Connection(s.subject, status, message)
            if s.key in listed
            else Connection(s.subject, "Failed", "not listed by Argo CD after the apply")
            for s, (status, message) in zip(secrets, states, strict=True)
        ]


def _host_key_unknown(message: object) -> bool:
    return "knownhosts: key is unknown" in str(message)


def list_repositories(site: Site, argocd: Client) -> int:
    """Print what Argo CD lists against what the site declares; 1 when any is Failed or missing."""
    declared = {r.url: r.name for r in site.repositories}
    code = 0
    for item in argocd.list_repositories():
        status, message = connection_state(item)
        mark = "" if item.get("repo") in declared else " (not declared in the site)"
        print(
            f"{item.get('name') or '-'}  {item.get('repo')}  {item.get('type') or 'git'}  "
            f"{status}{mark}" + (f": {message}" if status == "Failed" and message else "")
        )
        declared.pop(str(item.get("repo")), None)
        code = 1 if status == "Failed" else code
    for creds in argocd.list_repocreds():
        print(f"template  {creds.get('url')}  {creds.get('type') or 'git'}")
    for url, name in declared.items():
        print(
            f"{name}  {url}  missing: declared in the site, not registered (make argocd/repo/add)"
        )
        code = 1
    return code
