"""The reader of ``argocd/secrets.toml``: the Secrets a site keeps on its management cluster.

The file's shape is in ``tirosh.secrets_registry``. Names and namespaces are Kubernetes names,
keys follow Kubernetes' grammar for Secret keys, values are only ever named (an environment
variable), never written.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from tirosh import inputs
from tirosh.secrets_registry import DOCKERCONFIGJSON, ENV_NAME, OPAQUE, RegistrySecret
from tirosh.site.reader import Report, Table, read_toml
from tirosh.site.values import host_port_problem

__all__ = ["read_secrets", "secret_key_problem"]

_KEYS: Final = ("name", "namespace", "type", "keys", "registry", "username_env", "password_env")
# Kubernetes' validation of a Secret's data keys (IsConfigMapKey).
_SECRET_KEY: Final = re.compile(r"[-._a-zA-Z0-9]+", re.ASCII)


def secret_key_problem(key: str) -> str | None:
    if len(key) > 253 or not _SECRET_KEY.fullmatch(key) or key in (".", ".."):
        shown = ascii(key[:60])
        return f"is not a Secret key (letters, digits, '-', '_', '.'; at most 253), got {shown}"
    return None


def read_secrets(report: Report, path: Path) -> tuple[RegistrySecret, ...]:
    """The Secrets of the file (none when it is absent); problems recorded."""
    top = read_toml(report, path, optional=True)
    if top is None:
        return ()
    top.allow_tables(("secrets",))
    secrets = [s for s in (_secret(entry) for entry in top.entries("secrets")) if s]
    seen: set[tuple[str, str]] = set()
    for index, secret in enumerate(secrets):
        if (secret.namespace, secret.name) in seen:
            top.problem(
                f"secrets[{index}].name", f"{secret.namespace}/{secret.name} is declared twice"
            )
        seen.add((secret.namespace, secret.name))
    return tuple(secrets)


def _secret(entry: Table) -> RegistrySecret | None:
    entry.allow(_KEYS)
    name = entry.k8s_name("name", required=True)
    namespace = entry.k8s_name("namespace", required=True)
    kind = entry.string("type") or OPAQUE
    if kind == DOCKERCONFIGJSON:
        return _registry_secret(entry, name, namespace)
    if kind != OPAQUE:
        entry.problem("type", f"must be {OPAQUE} or {DOCKERCONFIGJSON}, got {kind!r}")
    for key in ("registry", "username_env", "password_env"):
        if key in entry.data:
            entry.problem(key, f"only for type {DOCKERCONFIGJSON}")
    pairs = _keys(entry)
    if name and namespace and pairs:
        return RegistrySecret(name, namespace, OPAQUE, tuple(pairs))
    return None


def _keys(entry: Table) -> list[tuple[str, str]]:
    keys = entry.data.get("keys")
    if not isinstance(keys, dict) or not keys:
        entry.problem("keys", "required: a table of Secret key = environment variable name")
        return []
    pairs = []
    for key, variable in keys.items():
        if reason := inputs.text_problem(str(key)) or secret_key_problem(str(key)):
            entry.problem(f"keys.{str(key)!a}", reason)
        elif not isinstance(variable, str) or not ENV_NAME.fullmatch(variable):
            entry.problem(f"keys.{key}", f"must name an environment variable, got {variable!r}")
        else:
            pairs.append((key, variable))
    return pairs


def _registry_secret(
    entry: Table, name: str | None, namespace: str | None
) -> RegistrySecret | None:
    if "keys" in entry.data:
        entry.problem(
            "keys", f"a {DOCKERCONFIGJSON} Secret takes registry, username_env, password_env"
        )
    registry = entry.string("registry", required=True)
    if registry is not None and host_port_problem(registry.removeprefix("https://")):
        shown = ascii(registry[:60])
        entry.problem("registry", f"must be a registry host such as ghcr.io, got {shown}")
        registry = None
    user_env = entry.env_name("username_env", required=True)
    pass_env = entry.env_name("password_env", required=True)
    if name and namespace and registry and user_env and pass_env:
        return RegistrySecret(name, namespace, DOCKERCONFIGJSON, (), registry, user_env, pass_env)
    return None
