"""The reader of k3s/vars.yml: the install settings, and the k3s flags of ``k3s_config``."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from tirosh.site.model import K3S_VARS, K3s, settings_of
from tirosh.site.reader import Report, Table, describe, read_yaml
from tirosh.site.values import is_host, is_ip_address

_FILE_MODE: Final = re.compile(r"[0-7]{3,4}")
_SECRET_FLAGS: Final = {
    "token": "token-file (a 0600 file on the VM)",
    "agent-token": "agent-token-file (a 0600 file on the VM)",
    "etcd-s3-secret-key": "an etcd-s3-config-secret",
}


@dataclass
class K3sDraft:
    file: str = K3S_VARS
    # False when the file or k3s_config is unusable: the certificate names are then unknown and
    # the api_server check would only report a follow-up error.
    sans_known: bool = False
    # the fields of K3s read from this file
    values: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    sans: list[str] = field(default_factory=list)
    node_addresses: list[str] = field(default_factory=list)
    disable: list[str] = field(default_factory=list)


def read_k3s_vars(report: Report, path: Path) -> K3sDraft:
    draft = K3sDraft(file=report.rel(path))
    t = read_yaml(report, path)
    if t is None:
        return draft
    draft.values = t.read(settings_of(K3s), extra=("k3s_config",))
    if draft.values["install_source"] == "airgap" and "k3s_airgap_dir" not in t.data:
        t.problem("k3s_airgap_dir", "required when k3s_install_source is airgap")
    config = t.table("k3s_config")
    if config is not None:
        draft.config = dict(config.data)
        start = len(report.problems)
        _check_k3s_config(config, draft)
        draft.sans_known = len(report.problems) == start
    else:
        draft.sans_known = "k3s_config" not in t.data
    return draft


def _check_k3s_config(t: Table, draft: K3sDraft) -> None:
    """Check the k3s flags whose mistakes break the bootstrap; other flags are free-form."""
    for key in t.data:
        if not isinstance(key, str):
            t.problem(str(key), "k3s flag names must be strings")
        elif key in _SECRET_FLAGS:
            # Site files are committed and config.yaml shows in --diff: keep secrets out of both.
            t.problem(key, f"secrets do not belong in site files; use {_SECRET_FLAGS[key]}")
        elif key == "datastore-endpoint" and "@" in str(t.data[key]):
            t.problem(
                key,
                "holds credentials; secrets do not belong in site files "
                "(k3s reads K3S_DATASTORE_ENDPOINT from /etc/systemd/system/k3s.service.env)",
            )
    if "write-kubeconfig-mode" in t.data:
        mode = t.data["write-kubeconfig-mode"]
        # YAML 1.1 reads an unquoted 0644 as the integer 420, which k3s would misread.
        if not isinstance(mode, str) or not _FILE_MODE.fullmatch(mode):
            t.problem("write-kubeconfig-mode", 'must be a quoted octal string such as "0644"')
        elif int(mode, 8) & 0o077:
            t.report.warnings.append(
                f"k3s_config.write-kubeconfig-mode {mode} lets other users on the VM read the "
                "cluster-admin kubeconfig; the deploy reads it as root and does not need that"
            )
    draft.sans = _hosts(t, "tls-san", is_host, "an IP address or DNS name")
    for key in ("node-ip", "node-external-ip"):
        draft.node_addresses += _hosts(t, key, is_ip_address, "an IP address")
    advertise = t.string("advertise-address")
    if advertise is not None:
        if is_ip_address(advertise):
            draft.node_addresses.append(advertise)
        else:
            t.problem("advertise-address", f"must be an IP address, got {advertise!r}")
    draft.disable = _flag_list(t, "disable")


def _flag_list(t: Table, key: str) -> list[str]:
    """A k3s slice flag: a list of strings, or one string with comma-separated values."""
    if key not in t.data:
        return []
    value = t.data[key]
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, list):
        items = t.string_list(key)
        return [item.strip() for item in items] if items is not None else []
    t.problem(key, f"must be a string or a list of strings, got {describe(value)}")
    return []


def _hosts(t: Table, key: str, valid: Callable[[str], bool], what: str) -> list[str]:
    good: list[str] = []
    for index, item in enumerate(_flag_list(t, key)):
        if valid(item):
            good.append(item)
        else:
            t.problem(f"{key}[{index}]", f"must be {what}, got {item!r}")
    return good
