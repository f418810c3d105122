"""The Kubernetes Secrets a site keeps on its management cluster (Image Updater credentials).

``sites/<site>/argocd/secrets.toml`` (read by ``tirosh.site.secrets_file``) names each Secret, its namespace, type and keys, and the
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
import io
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from dotenv import dotenv_values

from tirosh.errors import OperatorError
from tirosh.plan import Action, Change

__all__ = [
    "DOCKERCONFIGJSON",
    "SECRETS_FILE",
    "MissingVariables",
    "RegistrySecret",
    "desired_data",
    "key_change",
    "parse_dotenv",
    "plan",
    "values",
]

SECRETS_FILE: Final = "argocd/secrets.toml"
OPAQUE: Final = "Opaque"
DOCKERCONFIGJSON: Final = "kubernetes.io/dockerconfigjson"
ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


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


class MissingVariables(OperatorError):
    """Variables that are neither in the environment nor in .env; nothing may be applied."""

    def __init__(self, missing: list[tuple[str, str]]) -> None:
        self.missing = missing  # (secret, variable)
        names = ", ".join(f"{variable} (Secret {secret})" for secret, variable in missing)
        super().__init__(f"not set in the environment or .env: {names}; nothing was applied")


def parse_dotenv(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines as the ecosystem reads a ``.env`` (python-dotenv, without ``${VAR}``
    expansion: a token holding ``$`` is taken as written): ``export``, quotes, comments after
    a value, multi-line quoted values, escapes in double quotes, a BOM."""
    # A line it cannot parse is skipped; its warning names only the line number.
    logging.getLogger("dotenv.main").setLevel(logging.ERROR)
    parsed = dotenv_values(stream=io.StringIO(text.removeprefix("\ufeff")), interpolate=False)
    return {
        key: value for key, value in parsed.items() if value is not None and ENV_NAME.fullmatch(key)
    }


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


def key_change(ref: str, key: str, action: Action) -> Change:
    """The change of one key of Secret ``ref`` (namespace/name); ``key`` "" for the Secret."""
    return Change("secret", action, f"Secret {ref}" + (f" key {key}" if key else ""))


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
) -> list[Change]:
    """Per key: create / update / unchanged. ``existing`` is the live Secret (``type`` and
    base64 ``data``) or None. Keys the Secret has beyond the declared ones are left alone."""
    ref = f"{secret.namespace}/{secret.name}"
    if existing is None:
        return [key_change(ref, "", "create")] + [key_change(ref, key, "create") for key in wanted]
    changes = []
    if (existing.get("type") or OPAQUE) != secret.type:
        changes.append(key_change(ref, "", "update"))  # the type is immutable: replaced
    data = existing.get("data") or {}
    for key, value in wanted.items():
        current = base64.b64decode(data[key]).decode(errors="replace") if key in data else None
        if current is None:
            changes.append(key_change(ref, key, "create"))
        else:
            action: Action = "unchanged" if _same(key, value, current) else "update"
            changes.append(key_change(ref, key, action))
    return changes
