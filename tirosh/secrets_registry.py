"""The Kubernetes Secrets a site keeps on its management cluster (Image Updater credentials).

``sites/<site>/argocd/secrets.toml`` names each Secret, its namespace, type and keys, and the
environment variable behind each key; values come from the environment or a git-ignored
``.env`` at the repository root, never from a site file::

    [[secrets]]
    name = "argocd-image-updater-gitops-writeback"
    namespace = "argocd"
    [secrets.keys]
    username = "GITOPS_WRITEBACK_USERNAME"
    password = "GITOPS_WRITEBACK_TOKEN"

    [[secrets]]
    name = "argocd-image-updater-ghcr-pull"
    namespace = "argocd"
    type = "kubernetes.io/dockerconfigjson"
    registry = "ghcr.io"
    username_env = "GHCR_USERNAME"
    password_env = "GHCR_PULL_TOKEN"

Pure: the plan compares wanted with existing data and names only Secrets and keys, never a
value and never a hash of one (a hash of a short token can be guessed).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from tirosh.site import Problem, SiteError
from tirosh.sitefile import ENV_NAME, load_toml, read_entries

__all__ = [
    "DOCKERCONFIGJSON",
    "SECRETS_FILE",
    "KeyChange",
    "MissingVariables",
    "RegistrySecret",
    "desired_data",
    "load_secrets",
    "parse_dotenv",
    "parse_secrets",
    "plan",
    "values",
]

SECRETS_FILE: Final = "argocd/secrets.toml"
OPAQUE: Final = "Opaque"
DOCKERCONFIGJSON: Final = "kubernetes.io/dockerconfigjson"
_KEYS: Final = ("name", "namespace", "type", "keys", "registry", "username_env", "password_env")


@dataclass(frozen=True)
class RegistrySecret:
    name: str
    namespace: str
    type: str
    # Opaque: Secret key -> variable. dockerconfigjson: registry and the two variables.
    keys: tuple[tuple[str, str], ...] = ()
    registry: str | None = None
    username_env: str | None = None
    password_env: str | None = None

    @property
    def variables(self) -> tuple[str, ...]:
        if self.type == DOCKERCONFIGJSON:
            return (self.username_env or "", self.password_env or "")
        return tuple(variable for _, variable in self.keys)


class MissingVariables(Exception):
    """Variables that are neither in the environment nor in .env; nothing may be applied."""

    def __init__(self, missing: list[tuple[str, str]]) -> None:
        self.missing = missing  # (secret, variable)
        names = ", ".join(f"{variable} (Secret {secret})" for secret, variable in missing)
        super().__init__(f"not set in the environment or .env: {names}; nothing was applied")


def parse_secrets(
    data: Mapping[str, Any], file: str, problems: list[Problem]
) -> list[RegistrySecret]:
    secrets = []
    for entry in read_entries(data, "secrets", file, ("secrets",), problems):
        entry.allow(_KEYS)
        name, namespace = (
            entry.k8s_name("name", required=True),
            entry.k8s_name("namespace", required=True),
        )
        kind = entry.string("type", default=OPAQUE)
        if kind == DOCKERCONFIGJSON:
            for key in ("keys",):
                if key in entry.data:
                    entry.problem(
                        key,
                        f"a {DOCKERCONFIGJSON} Secret takes registry, username_env, password_env",
                    )
            registry = entry.string("registry", required=True)
            if registry is not None and (
                "/" in registry.removeprefix("https://") or " " in registry
            ):
                entry.problem(
                    "registry", f"must be a registry host such as ghcr.io, got {registry!r}"
                )
            user_env = entry.env_name("username_env", required=True)
            pass_env = entry.env_name("password_env", required=True)
            if name and namespace and registry and user_env and pass_env:
                secrets.append(
                    RegistrySecret(name, namespace, kind, (), registry, user_env, pass_env)
                )
            continue
        if kind != OPAQUE:
            entry.problem("type", f"must be {OPAQUE} or {DOCKERCONFIGJSON}, got {kind!r}")
        for key in ("registry", "username_env", "password_env"):
            if key in entry.data:
                entry.problem(key, f"only for type {DOCKERCONFIGJSON}")
        keys = entry.data.get("keys")
        pairs: list[tuple[str, str]] = []
        if not isinstance(keys, dict) or not keys:
            entry.problem("keys", "required: a table of Secret key = environment variable name")
        else:
            for key, variable in keys.items():
                if not isinstance(variable, str) or not ENV_NAME.fullmatch(variable):
                    entry.problem(
                        f"keys.{key}", f"must name an environment variable, got {variable!r}"
                    )
                else:
                    pairs.append((str(key), variable))
        if name and namespace and pairs:
            secrets.append(RegistrySecret(name, namespace, OPAQUE, tuple(pairs)))
    seen: set[tuple[str, str]] = set()
    for index, secret in enumerate(secrets):
        if (secret.namespace, secret.name) in seen:
            problems.append(
                Problem(
                    file,
                    f"secrets[{index}].name",
                    f"{secret.namespace}/{secret.name} is declared twice",
                )
            )
        seen.add((secret.namespace, secret.name))
    return secrets


def load_secrets(site_dir: Path, file: str | None = None) -> list[RegistrySecret]:
    """The site's Secrets (none when secrets.toml is absent); SiteError listing every problem."""
    file = file or f"sites/{site_dir.name}/{SECRETS_FILE}"
    problems: list[Problem] = []
    data = load_toml(site_dir / SECRETS_FILE, file, problems)
    secrets = parse_secrets(data, file, problems) if data is not None else []
    if problems:
        raise SiteError(problems)
    return secrets


def parse_dotenv(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines (optional ``export``, quotes, ``#`` comments), as shells write them."""
    result = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not ENV_NAME.fullmatch(key):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        result[key] = value
    return result


def values(
    secrets: list[RegistrySecret], environ: Mapping[str, str], dotenv: Mapping[str, str]
) -> dict[str, str]:
    """Every variable the Secrets need (the environment wins over .env); MissingVariables else."""
    found: dict[str, str] = {}
    missing = []
    for secret in secrets:
        for variable in secret.variables:
            value = environ.get(variable) or dotenv.get(variable)
            if value:
                found[variable] = value
            elif (secret.name, variable) not in missing:
                missing.append((secret.name, variable))
    if missing:
        raise MissingVariables(missing)
    return found


def dockerconfigjson(registry: str, username: str, password: str) -> str:
    """The ``.dockerconfigjson`` Image Updater's ``pullsecret:`` reads: ``auths[registry].auth``."""
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    entry = {"username": username, "password": password, "auth": auth}
    return json.dumps({"auths": {registry: entry}}, separators=(",", ":"), sort_keys=True)


def desired_data(secret: RegistrySecret, found: Mapping[str, str]) -> dict[str, str]:
    """The Secret's data, key -> plain value."""
    if secret.type == DOCKERCONFIGJSON:
        assert secret.registry and secret.username_env and secret.password_env
        value = dockerconfigjson(
            secret.registry, found[secret.username_env], found[secret.password_env]
        )
        return {".dockerconfigjson": value}
    return {key: found[variable] for key, variable in secret.keys}


@dataclass(frozen=True)
class KeyChange:
    secret: str  # namespace/name
    key: str  # "" for the Secret itself (create, or a type change)
    action: str  # create | update | unchanged

    def __str__(self) -> str:
        what = f"Secret {self.secret}" + (f" key {self.key}" if self.key else "")
        return f"{self.action:9} {what}"


def _same(key: str, wanted: str, existing: str | None) -> bool:
    if existing is None:
        return False
    if key == ".dockerconfigjson":
        try:
            return bool(json.loads(existing) == json.loads(wanted))
        except ValueError:
            return False
    return existing == wanted


def plan(
    secret: RegistrySecret, wanted: Mapping[str, str], existing: Mapping[str, Any] | None
) -> list[KeyChange]:
    """Per key: create / update / unchanged. ``existing`` is the live Secret (``type`` and
    base64 ``data``) or None. Keys the Secret has beyond the declared ones are left alone."""
    ref = f"{secret.namespace}/{secret.name}"
    if existing is None:
        return [KeyChange(ref, "", "create")] + [KeyChange(ref, key, "create") for key in wanted]
    changes = []
    if (existing.get("type") or OPAQUE) != secret.type:
        changes.append(KeyChange(ref, "", "update"))  # the type is immutable: replaced
    data = existing.get("data") or {}
    for key, value in wanted.items():
        current = base64.b64decode(data[key]).decode(errors="replace") if key in data else None
        if current is None:
            changes.append(KeyChange(ref, key, "create"))
        else:
            changes.append(
                KeyChange(ref, key, "unchanged" if _same(key, value, current) else "update")
            )
    return changes
