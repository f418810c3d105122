"""The reader of k3s/vars.yml: the install settings, and the k3s flags of ``k3s_config``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tirosh import k3s_config, urls
from tirosh.site.model import K3S_VARS, K3s, settings_of
from tirosh.site.reader import Report, Table, describe, read_yaml
from tirosh.site.values import is_host, is_ip_address


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
    # Plain http only with the binary's digest pinned (the URL itself is checked by its
    # declaration; a digest that is there but malformed is reported on its own).
    pinned = "k3s_sha256" in t.data
    if reason := urls.url_problem(draft.values["release_url"], pinned=pinned):
        t.problem("k3s_release_url", reason)
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
    """Check the k3s flags whose mistakes break the bootstrap or leak a secret; other flags are
    free-form. Keys are first normalised as k3s reads them (``token+``, ``t``, ``--token`` are
    all the token flag), values refused where k3s cannot take them."""
    flags = k3s_config.normalise(t.data)
    for key, problem in flags.problems:
        t.problem(key, problem)
    if mode_problem := k3s_config.write_kubeconfig_mode_problem(flags):
        t.problem(flags.written_as["write-kubeconfig-mode"], mode_problem)
    elif (mode := flags.values.get("write-kubeconfig-mode")) and int(mode, 8) & 0o077:
        t.report.warnings.append(
            f"k3s_config.write-kubeconfig-mode {mode} lets other users on the VM read the "
            "cluster-admin kubeconfig; the deploy reads it as root and does not need that"
        )
    # The rest reads the flags by the names k3s gives them.
    n = Table(t.report, t.file, flags.values, t.prefix)
    draft.sans = _hosts(n, "tls-san", is_host, "an IP address or DNS name")
    for key in ("node-ip", "node-external-ip"):
        draft.node_addresses += _hosts(n, key, is_ip_address, "an IP address")
    advertise = n.string("advertise-address")
    if advertise is not None:
        if is_ip_address(advertise):
            draft.node_addresses.append(advertise)
        else:
            n.problem("advertise-address", f"must be an IP address, got {advertise!r}")
    draft.disable = _flag_list(n, "disable")


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
