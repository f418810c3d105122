"""``k3s_config`` read the way k3s reads ``/etc/rancher/k3s/config.yaml``, then checked.

k3s (``pkg/configfilearg``, ``readConfigFile``) turns each key into a command-line flag: a
trailing ``+`` is removed and means "append to the earlier value"; a one-letter key becomes
``-k`` (so ``t`` is the ``token`` flag's alias ``-t``), any other key ``--key``; the value is
formatted into ``--key=value``, once per item for a list. Checks that compare raw key names
miss ``token+``, ``t`` or ``--token``; this module normalises every key to the flag k3s will
see before any check runs. What k3s cannot take sensibly is refused: nested mappings (k3s
would pass Go's ``map[...]`` text), nulls, and two keys for one flag.

``normalise`` gives the flags and the problems; ``check_k3s_config`` the problems as
``file: key: problem`` lines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from tirosh.inputs import text_problem

__all__ = ["ALIASES", "SECRET_FLAGS", "Flags", "check_k3s_config", "flag_name", "normalise"]

# The one-letter aliases of k3s server and agent flags (urfave/cli "name,x" / Aliases).
ALIASES: Final = {
    "c": "config",
    "d": "data-dir",
    "i": "node-ip",
    "o": "write-kubeconfig",
    "s": "server",
    "t": "token",
}

# Flags whose value is a secret, and where the secret belongs instead.
SECRET_FLAGS: Final = {
    "token": "token-file (a 0600 file on the VM)",
    "agent-token": "agent-token-file (a 0600 file on the VM)",
    "cluster-secret": "token-file (cluster-secret is the old name of token)",
    "etcd-s3-access-key": "an etcd-s3-config-secret",
    "etcd-s3-secret-key": "an etcd-s3-config-secret",
    "etcd-s3-session-token": "an etcd-s3-config-secret",
    "vpn-auth": "vpn-auth-file (a 0600 file on the VM)",
}
# Flags whose value is a URL or DSN that may carry user:password.
_URL_FLAGS: Final = ("datastore-endpoint", "etcd-s3-proxy", "server")
_ENV_FILE: Final = "/etc/systemd/system/k3s.service.env"

_FLAG: Final = re.compile(r"[a-z0-9][a-z0-9-]*", re.ASCII)
_FILE_MODE: Final = re.compile(r"[0-7]{3,4}", re.ASCII)
# user:password@ in a URL (scheme://…@) or a DSN (user:password@tcp(host)/db).
_USERINFO: Final = re.compile(r"(?:://|^)[^/@\s]*:[^/@\s]*@|://[^/@\s]+@")
# name=value pairs inside a value (component args, vpn-auth) whose name says secret.
_SECRET_PAIR: Final = re.compile(
    r"(?:^|[^a-z0-9])(?:password|passwd|pwd|secret|secret-key|client-secret|token|"
    r"joinkey|authkey|auth-key|access-key|session-token)\s*=\s*\S",
    re.IGNORECASE,
)
_SCALARS: Final = (str, int, float, bool)


@dataclass
class Flags:
    """k3s_config as flags: canonical name -> value, and (key, problem) pairs."""

    values: dict[str, Any] = field(default_factory=dict)
    written_as: dict[str, str] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)


def flag_name(key: str) -> str:
    """The flag k3s makes of a config key, without dashes: ``t`` -> ``token``,
    ``tls-san+`` -> ``tls-san``, ``--token`` -> ``token``, ``token=x`` -> ``token``."""
    name = key[:-1] if key.endswith("+") else key
    name = name.lstrip("-").split("=", 1)[0]
    return ALIASES.get(name, name) if len(name) == 1 else name


def normalise(raw: Mapping[Any, Any]) -> Flags:
    flags = Flags()
    for key, value in raw.items():
        if not isinstance(key, str):
            flags.problems.append((str(key), "k3s flag names must be strings"))
            continue
        name = flag_name(key)
        if (secret := _secret_problem(name)) is not None:
            flags.problems.append((key, secret))
            continue
        if problem := _key_problem(key, name):
            flags.problems.append((key, problem))
            continue
        if name in flags.written_as:
            other = flags.written_as[name]
            flags.problems.append((key, f"is the flag {name} again (also given as {other!r})"))
            continue
        if found := _value_problem(key, name, value):
            flags.problems.append(found)
            continue
        flags.values[name] = value
        flags.written_as[name] = key
    return flags


def _secret_problem(name: str) -> str | None:
    instead = SECRET_FLAGS.get(name.lower())
    if instead is None:
        return None
    return f"is the k3s flag {name}: secrets do not belong in site files; use {instead}"


def _key_problem(key: str, name: str) -> str | None:
    if key.startswith("-"):
        return f"write the flag name without dashes ({name!r}): k3s adds them itself"
    if "=" in key:
        return f"a flag name cannot hold '=' (k3s would read the flag {name!r})"
    if not _FLAG.fullmatch(name):
        return "is not a k3s flag name (lowercase ASCII letters, digits and '-')"
    return None


def _value_problem(key: str, name: str, value: Any) -> tuple[str, str] | None:
    items = value if isinstance(value, list) else [value]
    for index, item in enumerate(items):
        where = f"{key}[{index}]" if isinstance(value, list) else key
        if item is None or (isinstance(item, str) and not item.strip()):
            return where, "has no value (k3s would pass an empty flag); remove the key or set it"
        if isinstance(item, Mapping):
            return where, "k3s takes a string, number, boolean or list here, not a mapping"
        if isinstance(item, list):
            return where, "k3s takes a list of strings here, not a list of lists"
        if not isinstance(item, _SCALARS):
            return where, f"quote it: YAML read a {type(item).__name__} here"
        if isinstance(item, str) and (problem := _credential_problem(name, item)):
            return where, problem
    return None


def _credential_problem(name: str, text: str) -> str | None:
    if problem := text_problem(text):
        return problem  # a newline in a value would split it into two k3s arguments' lines
    if "-----BEGIN" in text:
        return "holds PEM data; keys and certificates go in files on the VM"
    if (name in _URL_FLAGS and "@" in text) or _USERINFO.search(text):
        return (
            "holds credentials (user:password@); secrets do not belong in site files "
            f"(k3s reads K3S_{name.upper().replace('-', '_')} from {_ENV_FILE})"
        )
    if _SECRET_PAIR.search(text):
        return "holds a secret (a password=, secret= or token= setting); put it in a file on the VM"
    return None


def write_kubeconfig_mode_problem(flags: Flags) -> str | None:
    """k3s parses the mode as octal text; YAML 1.1 reads an unquoted 0644 as the integer 420."""
    mode = flags.values.get("write-kubeconfig-mode")
    if mode is None:
        return None
    if not isinstance(mode, str) or not _FILE_MODE.fullmatch(mode):
        return 'must be a quoted octal string such as "0644"'
    return None


def check_k3s_config(raw: object, file: str) -> list[str]:
    """Every problem of a ``k3s_config`` value as ``file: k3s_config.key: problem`` lines."""
    if not isinstance(raw, Mapping):
        return [f"{file}: k3s_config: must be a mapping of k3s flags"]
    flags = normalise(raw)
    lines = [f"{file}: k3s_config.{key}: {problem}" for key, problem in flags.problems]
    if problem := write_kubeconfig_mode_problem(flags):
        key = flags.written_as["write-kubeconfig-mode"]
        lines.append(f"{file}: k3s_config.{key}: {problem}")
    return lines
