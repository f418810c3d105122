"""Register the site's repositories and credential templates in Argo CD.

``make argocd/repo/add`` and ``argocd/repo/list`` (``local.commands``). Every secret is
gathered before anything changes: a token from its variable (or a prompt), a deploy key from
its file, SSH host keys pinned in the site or found in the operator's known_hosts
(``local.argocd.known_hosts``). A repository or template is upserted only when what Argo CD
stores (its Secret, read through the management context) differs, and always with its
credentials: Argo CD wipes the ones an upsert omits. The connection state is read back;
``Failed`` prints Argo CD's message and makes the command exit non-zero.
"""

from __future__ import annotations

import base64
import getpass
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

from kubernetes import client

from local.argocd.api import PARALLEL_REQUESTS, ArgoCDError, Client
from local.argocd.known_hosts import (
    MissingSecret,
    ensure_known_hosts,
    host_keys,
    stored_known_hosts,
)
from local.kube import client as kubeclient
from tirosh import regular_file
from tirosh.plan import Action, Change, Connection, Plan, connection_state
from tirosh.repositories import (
    CREDENTIAL_KEYS,
    Credentials,
    Repository,
    differs,
    repo_creds_body,
    repository_body,
)
from tirosh.site import Site

__all__ = ["MissingSecret", "gather_secrets", "list_repositories", "register_repositories"]

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


def _stored(core: client.CoreV1Api, namespace: str, kind: str) -> dict[str, dict[str, str]]:
    """Argo CD's repository (or repo-creds) Secrets by URL, decoded."""
    found = {}
    for secret in core.list_namespaced_secret(
        namespace, label_selector=f"argocd.argoproj.io/secret-type={kind}"
    ).items:
        data = {
            k: base64.b64decode(v).decode(errors="replace") for k, v in (secret.data or {}).items()
        }
        if data.get("url"):
            found[data["url"]] = data
    return found


def register_repositories(
    site: Site,
    argocd: Client | None,
    environ: Mapping[str, str],
    secrets: Mapping[str, str | None],
    dry: bool = False,
) -> Plan:
    """Register the site's templates and repositories; ``secrets`` from ``gather_secrets``
    (gathered by the caller, so a prompt is never shown twice)."""
    plan = Plan()
    if not site.repositories and not site.templates:
        return plan
    declared = [(r.url, r.credentials) for r in site.repositories]
    declared += [(t.url, t.credentials) for t in site.templates]
    keys = [k for url, credentials in declared for k in host_keys(url, credentials, environ)]
    api = kubeclient.api_client(site.kubeconfig, site.argocd_context)
    try:
        core = client.CoreV1Api(api)
        stored_repos = _stored(core, site.argocd.namespace, "repository")
        stored_creds = _stored(core, site.argocd.namespace, "repo-creds")
        stored_keys = stored_known_hosts(core, site.argocd.namespace) if keys else []
    finally:
        api.close()
    plan.changes += ensure_known_hosts(argocd, list(dict.fromkeys(keys)), stored_keys, dry)
    settle = KNOWN_HOSTS_SETTLE if plan.pending else 0.0
    for template in site.templates:
        body = repo_creds_body(template, secrets[template.url])
        changed = differs(stored_creds.get(template.url), body, ("type", *CREDENTIAL_KEYS))
        stored = template.url in stored_creds
        action: Action = ("update" if stored else "create") if changed else "unchanged"
        what = f"repo-creds {template.url}"
        plan.changes.append(Change(f"template {template.url}", action, what))
        if changed and not dry and argocd is not None:
            argocd.upsert_repocreds(body)

    def register(repository: Repository) -> Plan:
        stored = stored_repos.get(repository.url)
        return _register_one(argocd, repository, secrets[repository.url], stored, dry, settle)

    # Argo CD tests a repository's connection on every upsert and read (a git ls-remote by
    # repo-server): a few at a time, 20 repositories cost a fraction of 20 in a row. Results
    # keep the declared order.
    with ThreadPoolExecutor(max_workers=PARALLEL_REQUESTS) as pool:
        for result in pool.map(register, site.repositories):
            plan.extend(result)
    return plan


def _register_one(
    argocd: Client | None,
    repository: Repository,
    secret: str | None,
    stored: Mapping[str, str] | None,
    dry: bool,
    settle: float = 0.0,
) -> Plan:
    body = repository_body(repository, secret)
    changed = differs(stored, body, ("name", "type", *CREDENTIAL_KEYS))
    action: Action = ("update" if stored is not None else "create") if changed else "unchanged"
    plan = Plan([Change(repository.name, action, f"repository {repository.url}")])
    if dry or argocd is None:
        return plan
    try:
        found = _upsert_and_read(argocd, body, repository.url, changed, settle)
    except ArgoCDError as exc:
        plan.connections.append(Connection(repository.name, "Failed", exc.api_message or str(exc)))
        return plan
    if found is None:
        status, message = "Failed", "not listed by Argo CD after the upsert"
    else:
        status, message = connection_state(found)
    plan.connections.append(Connection(repository.name, status, message))
    return plan


def _host_key_unknown(message: object) -> bool:
    return "knownhosts: key is unknown" in str(message)


def _upsert_and_read(
    argocd: Client, body: Mapping[str, Any], url: str, changed: bool, settle: float
) -> dict[str, Any] | None:
    """Upsert (when changed) and read the repository back with its connection state.

    Argo CD tests the connection on both, and refuses an upsert whose test fails. A host key
    added moments ago reaches repo-server through a ConfigMap volume, which the kubelet
    refreshes a minute or so later: while it reports the key unknown, try again for up to
    ``settle`` seconds (0: once).
    """
    deadline = time.monotonic() + settle
    while True:
        try:
            if changed:
                argocd.upsert_repository(body)
            found = argocd.get_repository(url, force_refresh=settle > 0)
        except ArgoCDError as exc:
            if not (_host_key_unknown(exc.api_message or exc) and time.monotonic() < deadline):
                raise
        else:
            if not (_host_key_unknown(connection_state(found)[1]) and time.monotonic() < deadline):
                return found
        time.sleep(KNOWN_HOSTS_POLL)


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
