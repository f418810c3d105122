"""Plan and apply the site's registered Secrets (``tirosh.secrets_registry``) on the management
cluster, by server-side apply through the management context.

``python -m local.secrets plan|apply SITE [--secret NAME]`` (``make kubernetes/secret/plan`` /
``apply``, ``KUBERNETES_SECRET=NAME``). The plan names Secrets and keys with create / update /
unchanged, never a value or a hash of one. Every variable is checked before anything is
applied: a missing one is named and nothing changes.
"""

from __future__ import annotations

import argparse
import base64
import stat
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from kubernetes import client

from local import cli, kubeclient
from tirosh import regular_file
from tirosh.secrets_registry import (
    KeyChange,
    MissingVariables,
    RegistrySecret,
    desired_data,
    load_secrets,
    parse_dotenv,
    plan,
    values,
)
from tirosh.site import Site

__all__ = ["FIELD_MANAGER", "apply_secrets", "main", "plan_secrets", "read_dotenv"]

FIELD_MANAGER: Final = "tirosh-infra"


def read_dotenv(repo_root: Path) -> dict[str, str]:
    """The repository's git-ignored ``.env``, if any; a warning when others may read it."""
    path = repo_root / ".env"
    try:
        text = regular_file.read_text(path, ".env file")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror}") from None
    except ValueError as exc:  # a FIFO or device (refused without blocking), or not UTF-8
        raise ValueError(f"{path}: {exc}") from None
    if path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH):
        print(f"warning: {path} is readable by other users: chmod 600 {path}", file=sys.stderr)
    return parse_dotenv(text)


def selected(site: Site, name: str | None) -> list[RegistrySecret]:
    secrets = load_secrets(site.root)
    if name is None:
        return secrets
    chosen = [s for s in secrets if s.name == name]
    if not chosen:
        known = ", ".join(s.name for s in secrets) or "none"
        raise ValueError(
            f"no Secret {name!r} in sites/{site.name}/argocd/secrets.toml (declared: {known})"
        )
    return chosen


def _existing(core: client.CoreV1Api, secret: RegistrySecret) -> dict[str, Any] | None:
    try:
        found = core.read_namespaced_secret(secret.name, secret.namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return {"type": found.type, "data": dict(found.data or {})}


def plan_secrets(
    core: client.CoreV1Api, secrets: list[RegistrySecret], found: Mapping[str, str]
) -> list[tuple[RegistrySecret, dict[str, str], list[KeyChange]]]:
    result = []
    for secret in secrets:
        wanted = desired_data(secret, found)
        existing = _existing(core, secret)
        result.append((secret, wanted, plan(secret, wanted, existing)))
    return result


def _apply_one(
    core: client.CoreV1Api,
    secret: RegistrySecret,
    wanted: Mapping[str, str],
    changes: list[KeyChange],
) -> None:
    if any(c.key == "" and c.action == "update" for c in changes):
        # A Secret's type is immutable: replace the Secret.
        core.delete_namespaced_secret(secret.name, secret.namespace)
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": secret.name, "namespace": secret.namespace},
        "type": secret.type,
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in wanted.items()},
    }
    core.patch_namespaced_secret(
        secret.name,
        secret.namespace,
        body,
        field_manager=FIELD_MANAGER,
        force=True,
        _content_type="application/apply-patch+yaml",
    )


def apply_secrets(
    core: client.CoreV1Api, planned: list[tuple[RegistrySecret, dict[str, str], list[KeyChange]]]
) -> None:
    for secret, wanted, changes in planned:
        if any(c.action != "unchanged" for c in changes):
            _apply_one(core, secret, wanted, changes)


def run(site: Site, environ: Mapping[str, str], name: str | None, apply: bool) -> int:
    secrets = selected(site, name)
    if not secrets:
        print(f"site {site.name}: no Secret declared")
        return 0
    found = values(secrets, environ, read_dotenv(site.repo_root))
    api = kubeclient.api_client(site.kubeconfig, site.argocd_context)
    try:
        core = client.CoreV1Api(api)
        planned = plan_secrets(core, secrets, found)
        for _, _, changes in planned:
            for change in changes:
                print(change)
        if apply:
            apply_secrets(core, planned)
            changed = sum(any(c.action != "unchanged" for c in ch) for _, _, ch in planned)
            print(f"applied {changed} Secret(s) through context {site.argocd_context}")
    finally:
        api.close()
    return 0


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.secrets", description=__doc__)
    parser.add_argument("command", choices=("plan", "apply"))
    parser.add_argument("site")
    parser.add_argument("--secret", help="only this Secret (default: KUBERNETES_SECRET, else all)")
    args = parser.parse_args(argv)
    env, site = cli.site_and_environ(args.site, environ)
    if site is None:
        return 2
    name = args.secret or env.get("KUBERNETES_SECRET") or None
    return cli.reported(
        lambda: run(site, env, name, args.command == "apply"),
        (MissingVariables, ValueError, kubeclient.KubeconfigError),
        context=site.argocd_context,
    )


if __name__ == "__main__":
    raise SystemExit(main())
