"""The readers of profile.toml, inventory.toml and argocd/vars.yml (k3s/vars.yml: k3s_vars.py).

Each returns a draft: what the file says by attribute, None where a value is missing or has a
problem (recorded in the report). The site is built only when no problem was found at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from tirosh import argocd as argocd_manifest
from tirosh import urls
from tirosh.site.model import (
    ARGOCD_VARS,
    DEFAULT_SSH_PORT,
    INVENTORY,
    PROFILE,
    STABLE_WARNING,
    WORKLOADS,
    ArgoCD,
    ArgoCDAccess,
    Setting,
    Vm,
    settings_of,
)
from tirosh.site.reader import Report, Table, read_toml, read_yaml
from tirosh.site.values import NAME, host_key, https_url_problem

# The tables of profile.toml that are not a model class of their own.
_PROFILE: Final = (
    Setting("kube", "table", required=True),
    Setting("argocd", "table", required=True),
    Setting("k3s", "table"),
    Setting("rke2", "table"),
    Setting("proxmox", "table"),  # read by vms_file.py with vms.tfvars
)
_KUBE: Final = (
    Setting("kubeconfig", "path", required=True),
    Setting("contexts", "table", required=True),
)
_CONTEXTS: Final = (
    Setting("argocd", "string", required=True, name="argocd_context"),
    Setting("rke2_gpu", "string", required=True, name="rke2_context"),
)
# [k3s] and [rke2]: where the operator reaches the cluster, and its per-site kubeconfig.
_CLUSTER: Final = (
    Setting("api_server", "string", check=https_url_problem),
    Setting("kubeconfig_path", "path"),
)


@dataclass
class ProfileDraft:
    file: str = PROFILE
    # kubeconfig, argocd_context, rke2_context
    kube: dict[str, Any] = field(default_factory=dict)
    # the fields of ArgoCDAccess
    argocd: dict[str, Any] = field(default_factory=dict)
    # api_server, kubeconfig_path of [k3s] and [rke2]
    k3s: dict[str, Any] = field(default_factory=dict)
    rke2: dict[str, Any] = field(default_factory=dict)
    # The parsed file (vms_file.read_declared reads [proxmox] from it), {} when unreadable.
    data: dict[str, Any] = field(default_factory=dict)
    # Where overridable values came from, so problems point at the file or variable to fix.
    target_source: tuple[str, str] = (PROFILE, "argocd.target_name")
    context_source: tuple[str, str] = (PROFILE, "kube.contexts.argocd")


@dataclass
class InventoryDraft:
    file: str = INVENTORY
    parsed: bool = False  # False when there is no usable [vms] table: skip cross-checks.
    aliases: list[str] = field(default_factory=list)
    vms: dict[str, Vm] = field(default_factory=dict)


@dataclass
class ArgoDraft:
    file: str = ARGOCD_VARS
    # the fields ArgoCD adds to ArgoCDAccess
    values: dict[str, Any] = field(default_factory=dict)


def read_profile(report: Report, path: Path) -> ProfileDraft:
    file = report.rel(path)
    draft = ProfileDraft(file=file)
    draft.target_source = (file, "argocd.target_name")
    draft.context_source = (file, "kube.contexts.argocd")
    top = read_toml(report, path)
    if top is None:
        return draft
    draft.data = dict(top.data)
    tables = top.read(_PROFILE)
    if (kube := tables["kube"]) is not None:
        draft.kube = kube.read(_KUBE)
        kube.warn_kubeconfig_path("kubeconfig", draft.kube["kubeconfig"])
        if (contexts := draft.kube.pop("contexts")) is not None:
            draft.kube.update(contexts.read(_CONTEXTS))
    if (argocd := tables["argocd"]) is not None:
        draft.argocd = argocd.read(settings_of(ArgoCDAccess))
    for name in ("k3s", "rke2"):
        if (cluster := tables[name]) is not None:
            setattr(draft, name, cluster.read(_CLUSTER))
            cluster.warn_kubeconfig_path("kubeconfig_path", getattr(draft, name)["kubeconfig_path"])
    return draft


def read_inventory(report: Report, path: Path) -> InventoryDraft:
    draft = InventoryDraft(file=report.rel(path))
    top = read_toml(report, path)
    if top is None:
        return draft
    vms = top.read((Setting("vms", "table", required=True),))["vms"]
    if vms is None:
        return draft
    draft.parsed = True
    if not vms.data:
        top.problem("vms", "must define at least one VM")
    for alias in vms.data:
        draft.aliases.append(alias)
        if not NAME.fullmatch(alias):
            vms.problem(alias, "VM alias must be letters, digits, '.', '_' or '-'")
        table = vms.table(alias, required=True)
        if table is not None:
            vm = _read_vm(alias, table)
            if vm is not None:
                draft.vms[alias] = vm
    _check_duplicate_endpoints(vms, draft.vms)
    return draft


def _read_vm(alias: str, t: Table) -> Vm | None:
    start = len(t.report.problems)
    values = t.read(settings_of(Vm))
    workloads = values["workloads"] or ()
    for index, workload in enumerate(workloads):
        if workload not in WORKLOADS:
            t.problem(f"workloads[{index}]", f"must be one of {', '.join(WORKLOADS)}")
        elif workloads.index(workload) != index:
            t.problem(f"workloads[{index}]", f"{workload!r} is listed twice")
    if len(t.report.problems) > start:
        return None
    return Vm(alias=alias, **values)


def _check_duplicate_endpoints(vms: Table, parsed: dict[str, Vm]) -> None:
    # Two aliases for one SSH endpoint would make pyinfra configure the same machine twice.
    seen: dict[tuple[str, int], str] = {}
    for alias, vm in parsed.items():
        port = vm.ssh_port if vm.ssh_port is not None else DEFAULT_SSH_PORT
        endpoint = (host_key(vm.ansible_host), port)
        if endpoint in seen:
            vms.problem(
                f"{alias}.ansible_host",
                f"same ansible_host and ssh_port ({vm.ansible_host}:{port}) as vms.{seen[endpoint]}",
            )
        else:
            seen[endpoint] = alias


def read_argocd_vars(report: Report, path: Path) -> ArgoDraft:
    draft = ArgoDraft(file=report.rel(path))
    t = read_yaml(report, path)
    if t is None:
        return draft
    values = draft.values = t.read(settings_of(ArgoCD, own=True))
    if values["version"] == "stable":
        report.warnings.append(STABLE_WARNING)
    values["manifest_url"] = values["manifest_url"].replace("{version}", values["version"])
    if values["manifest_file"] is not None and "argocd_manifest_url" in t.data:
        report.warnings.append("argocd_manifest_url is ignored: argocd_manifest_file is set")
    _check_manifest_source(t, values)
    return draft


def _check_manifest_source(t: Table, values: dict[str, Any]) -> None:
    """Plain http only with a pinned sha256 (the URL itself is checked by its declaration; an
    invalid sha256 is None, so no pin); a manifest file that cannot be read or parsed, or does
    not match its pin, is reported at argocd_manifest_file as ``'<manifest file>': problem``."""
    path, sha256 = values["manifest_file"], values["manifest_sha256"]
    unpinned = sha256 is None and path is None
    if unpinned and (reason := urls.url_problem(values["manifest_url"], pinned=False)):
        t.problem("argocd_manifest_url", reason)
    parse = t.report.parse_manifest
    if path is not None and (problem := argocd_manifest.manifest_problem(path, sha256, parse)):
        t.problem("argocd_manifest_file", f"{t.report.rel(path)!r}: {problem}")
