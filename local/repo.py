"""Register the site's repositories and credential templates in Argo CD.

``python -m local.repo add SITE [--dry]`` (``make argocd/repo/add``) and ``list``
(``make argocd/repo/list``). Every secret is gathered before anything changes: a token from its
variable (or a prompt), a deploy key from its file, SSH host keys pinned in the site or found in
the operator's known_hosts (never trusted on first use). Host keys go to Argo CD's known hosts
as ``argocd cert add-ssh`` does. A repository or template is upserted only when what Argo CD
stores (its Secret, read through the management context) differs, and always with its
credentials: Argo CD wipes the ones an upsert omits. The connection state is read back;
``Failed`` prints Argo CD's message and makes the command exit non-zero.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from kubernetes import client

from local import cli, kubeclient
from local.argocd_api import PARALLEL_REQUESTS, ArgoCDError, Client
from local.cluster_rbac import Change
from tirosh import regular_file
from tirosh.repositories import (
    Credentials,
    KnownHost,
    Repository,
    Template,
    known_hosts_for,
    load_repositories,
    parse_known_host,
    repo_creds_body,
    repository_body,
    ssh_host,
)
from tirosh.site import Site

__all__ = ["RepoResult", "gather_secrets", "main", "register_repositories"]

_CREDENTIAL_KEYS = ("username", "password", "sshPrivateKey")


class MissingSecret(Exception):
    """A credential is not available; the message names where it should come from."""


@dataclass
class RepoResult:
    name: str
    changes: list[Change] = field(default_factory=list)
    state: str = ""
    message: str = ""


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
    name = host if port == 22 else f"[{host}]:{port}"
    run = subprocess.run(
        ["ssh-keygen", "-F", name, "-f", str(file)], capture_output=True, text=True
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
            f"{what}: the token is not set: export {variable} (or .env), or run from a terminal with --prompts-enabled"
        )
    return None


def gather_secrets(
    repositories: list[Repository],
    templates: list[Template],
    environ: Mapping[str, str],
    prompt: bool,
) -> dict[str, str | None]:
    """URL -> credential value for every repository and template, before anything changes."""
    secrets: dict[str, str | None] = {}
    problems = []
    for url, credentials in [(r.url, r.credentials) for r in repositories] + [
        (t.url, t.credentials) for t in templates
    ]:
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


def _differs(
    stored: Mapping[str, str] | None, body: Mapping[str, Any], keys: tuple[str, ...]
) -> bool:
    if stored is None:
        return True
    return any((stored.get(key) or "") != (body.get(key) or "") for key in keys)


def _stored_known_hosts(core: client.CoreV1Api, namespace: str) -> list[KnownHost]:
    """Argo CD's SSH known hosts (ConfigMap argocd-ssh-known-hosts-cm), plain lines only."""
    try:
        config_map = core.read_namespaced_config_map("argocd-ssh-known-hosts-cm", namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            return []
        raise
    lines = ((config_map.data or {}).get("ssh_known_hosts") or "").splitlines()
    return [k for k in (parse_known_host(line) for line in lines) if k is not None]


def _ensure_known_hosts(
    argocd: Client | None, wanted: list[KnownHost], stored: list[KnownHost], dry: bool
) -> list[Change]:
    changes = []
    for key in wanted:
        what = f"SSH known host {key.host} {key.key_type}"
        same_type = [k for k in stored if (k.host, k.key_type) == (key.host, key.key_type)]
        if key in same_type:
            changes.append(Change("unchanged", what))
            continue
        changes.append(Change("update" if same_type else "create", what))
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


# A host key just added reaches repo-server through a ConfigMap volume: the kubelet's sync
# period plus its ConfigMap cache TTL, a minute each by default, bound the delay.
KNOWN_HOSTS_SETTLE: Final = 150.0
KNOWN_HOSTS_POLL: Final = 3.0


def register_repositories(
    site: Site,
    argocd: Client | None,
    environ: Mapping[str, str],
    prompt: bool = False,
    dry: bool = False,
    secrets: Mapping[str, str | None] | None = None,
) -> list[RepoResult]:
    """Register the site's templates and repositories; ``secrets`` from ``gather_secrets`` when
    the caller gathered them already (so a prompt is never shown twice)."""
    repositories, templates = load_repositories(site.root, environ)
    if not repositories and not templates:
        return []
    if secrets is None:
        secrets = gather_secrets(repositories, templates, environ, prompt)
    keys = [k for r in repositories for k in host_keys(r.url, r.credentials, environ)]
    keys += [k for t in templates for k in host_keys(t.url, t.credentials, environ)]
    api = kubeclient.api_client(site.kubeconfig, site.argocd_context)
    try:
        core = client.CoreV1Api(api)
        stored_repos = _stored(core, site.argocd.namespace, "repository")
        stored_creds = _stored(core, site.argocd.namespace, "repo-creds")
        stored_keys = _stored_known_hosts(core, site.argocd.namespace)
    finally:
        api.close()
    wanted = list(dict.fromkeys(keys))
    results = (
        [RepoResult("known hosts", _ensure_known_hosts(argocd, wanted, stored_keys, dry))]
        if keys
        else []
    )
    hosts_changed = any(c.action != "unchanged" for r in results for c in r.changes)
    settle = KNOWN_HOSTS_SETTLE if hosts_changed else 0.0
    for template in templates:
        body = repo_creds_body(template, secrets[template.url])
        result = RepoResult(f"template {template.url}")
        changed = _differs(stored_creds.get(template.url), body, ("type", *_CREDENTIAL_KEYS))
        stored = template.url in stored_creds
        result.changes.append(
            Change(
                ("update" if stored else "create") if changed else "unchanged",
                f"repo-creds {template.url}",
            )
        )
        if changed and not dry and argocd is not None:
            argocd.upsert_repocreds(body)
        results.append(result)

    def register(repository: Repository) -> RepoResult:
        return _register_one(
            argocd,
            repository,
            secrets[repository.url],
            stored_repos.get(repository.url),
            dry,
            settle,
        )

    # Argo CD tests a repository's connection on every upsert and read (a git ls-remote by
    # repo-server): a few at a time, 20 repositories cost a fraction of 20 in a row. Results
    # keep the declared order.
    with ThreadPoolExecutor(max_workers=PARALLEL_REQUESTS) as pool:
        results += pool.map(register, repositories)
    return results


def _register_one(
    argocd: Client | None,
    repository: Repository,
    secret: str | None,
    stored: Mapping[str, str] | None,
    dry: bool,
    settle: float = 0.0,
) -> RepoResult:
    result = RepoResult(repository.name)
    body = repository_body(repository, secret)
    changed = _differs(stored, body, ("name", "type", *_CREDENTIAL_KEYS))
    action = ("update" if stored is not None else "create") if changed else "unchanged"
    result.changes.append(Change(action, f"repository {repository.url}"))
    if dry or argocd is None:
        return result
    try:
        found = _upsert_and_read(argocd, body, repository.url, changed, settle)
    except ArgoCDError as exc:
        result.state, result.message = "Failed", exc.api_message or str(exc)
        return result
    state = (found or {}).get("connectionState") or {}
    result.state = str(state.get("status") or ("Unknown" if found else "Failed"))
    result.message = str(
        state.get("message") or ("" if found else "not listed by Argo CD after the upsert")
    )
    return result


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
            state = (found or {}).get("connectionState") or {}
            if not (_host_key_unknown(state.get("message")) and time.monotonic() < deadline):
                return found
        time.sleep(KNOWN_HOSTS_POLL)


def report(results: list[RepoResult]) -> int:
    code = 0
    for result in results:
        for change in result.changes:
            print(f"{result.name}: {change}")
        if result.state:
            print(
                f"{result.name}: connection {result.state}"
                + (f": {result.message}" if result.message else "")
            )
        if result.state == "Failed":
            code = 1
    return code


def list_repositories(site: Site, argocd: Client, environ: Mapping[str, str]) -> int:
    repositories, templates = load_repositories(site.root, environ)
    declared = {r.url: r.name for r in repositories}
    code = 0
    for item in argocd.list_repositories():
        state = item.get("connectionState") or {}
        status = state.get("status") or "Unknown"
        mark = "" if item.get("repo") in declared else " (not declared in the site)"
        print(
            f"{item.get('name') or '-'}  {item.get('repo')}  {item.get('type') or 'git'}  {status}{mark}"
            + (f": {state.get('message')}" if status == "Failed" and state.get("message") else "")
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


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.repo", description=__doc__)
    parser.add_argument("command", choices=("add", "list"))
    parser.add_argument("site")
    parser.add_argument("--dry", action="store_true", help="only say what would change")
    args = parser.parse_args(argv)
    env, site = cli.site_and_environ(args.site, environ)
    if site is None:
        return 2
    from local import initial_secret
    from local.session import open_session, site_settings

    def command() -> int:
        prompt = site_settings(site, env).prompts and sys.stdin.isatty()
        if args.dry:
            return report(register_repositories(site, None, env, prompt, dry=True))
        with open_session(site, env, lambda: initial_secret.read(site, env)) as (argocd, _):
            if args.command == "list":
                return list_repositories(site, argocd, env)
            results = register_repositories(site, argocd, env, prompt)
        if not results:
            print(f"site {site.name}: no repository declared")
        return report(results)

    return cli.reported(command, (MissingSecret, ArgoCDError, kubeclient.KubeconfigError))


if __name__ == "__main__":
    raise SystemExit(main())
