"""Checks across site files: contexts, the target VM, the API certificate, the kubeconfig files.

They run after every file was read (``cross_check``) and after the site was built
(``check_kubeconfig_files``), and point each problem at the file or variable to fix.
"""

from __future__ import annotations

import os
from pathlib import Path

from tirosh import kubeconfig
from tirosh.inputs import excerpt
from tirosh.site.files import ArgoDraft, InventoryDraft, ProfileDraft
from tirosh.site.k3s_vars import K3sDraft
from tirosh.site.model import ENVIRONMENT, PROFILE, Site, Vm
from tirosh.site.reader import Report
from tirosh.site.values import host_key, https_url_host


def cross_check(
    report: Report,
    profile: ProfileDraft,
    inventory: InventoryDraft,
    k3s: K3sDraft,
    argocd: ArgoDraft,
) -> None:
    _check_contexts(report, profile)
    target = _check_target(report, profile, inventory)
    if target is not None and k3s.sans_known:
        _check_api_server(report, profile, k3s, target)
    # The traefik conflict only matters when an Ingress object will actually be created.
    settings = argocd.values
    if (
        settings.get("ingress_enabled")
        and settings.get("ingress_class_name") == "traefik"
        and "traefik" in k3s.disable
    ):
        report.add(
            argocd.file,
            "argocd_ingress_class_name",
            f'is "traefik" but {k3s.file} k3s_config.disable turns traefik off; '
            "use another ingress class or re-enable traefik",
        )


def _check_contexts(report: Report, profile: ProfileDraft) -> None:
    if not _check_context_names(report, profile):
        return
    argocd_ctx = profile.kube.get("argocd_context")
    rke2_ctx = profile.kube.get("rke2_context")
    if argocd_ctx is not None and argocd_ctx == rke2_ctx:
        file, key = profile.context_source
        report.add(
            file, key, f"{excerpt(argocd_ctx)} is also kube.contexts.rke2_gpu; use distinct names"
        )
    cluster_ctx = profile.argocd.get("cluster_context")
    if cluster_ctx is None or argocd_ctx is None or rke2_ctx is None:
        return
    # The runbook's warning: mixing the two up registers the management cluster itself as the
    # workload cluster. Seen from the site files alone, so refused before any connection.
    workload = {(profile.file, "argocd.cluster_context"): cluster_ctx}
    if override := report.environ.get("CLUSTER_KUBECTX"):
        workload[(ENVIRONMENT, "CLUSTER_KUBECTX")] = override
    for (file, key), name in workload.items():
        if name == argocd_ctx != rke2_ctx:  # equal contexts are reported above
            where = (
                "KUBECTX" if profile.context_source[0] == ENVIRONMENT else "kube.contexts.argocd"
            )
            report.add(
                file,
                key,
                f"{excerpt(name)} is the management context ({where}): Argo CD would register "
                f"its own cluster as the workload cluster; use kube.contexts.rke2_gpu ({excerpt(rke2_ctx)})",
            )
    if cluster_ctx not in (argocd_ctx, rke2_ctx):
        report.add(
            profile.file,
            "argocd.cluster_context",
            f"{excerpt(cluster_ctx)} must be kube.contexts.rke2_gpu ({excerpt(rke2_ctx)})",
        )


def _check_context_names(report: Report, profile: ProfileDraft) -> bool:
    """Context names become cluster, user and context names in the operator's kubeconfig: no
    control characters, no surrounding spaces, at most 253 characters."""
    names = {
        profile.context_source: profile.kube.get("argocd_context"),
        (profile.file, "kube.contexts.rke2_gpu"): profile.kube.get("rke2_context"),
        (profile.file, "argocd.cluster_context"): profile.argocd.get("cluster_context"),
        (ENVIRONMENT, "CLUSTER_KUBECTX"): report.environ.get("CLUSTER_KUBECTX") or None,
    }
    ok = True
    for (file, key), name in names.items():
        if name is not None and (problem := kubeconfig.name_problem(name)):
            report.add(file, key, f"{problem} (a kubeconfig context name), got {excerpt(name)}")
            ok = False
    return ok


def _check_target(report: Report, profile: ProfileDraft, inventory: InventoryDraft) -> Vm | None:
    name = profile.argocd.get("target_name")
    if name is None or not inventory.parsed:
        return None
    file, key = profile.target_source
    if name not in inventory.aliases:
        known = ", ".join(inventory.aliases) or "none"
        report.add(file, key, f"{name!r} is not a VM in {inventory.file} (VMs: {known})")
        return None
    target = inventory.vms.get(name)
    missing = [w for w in ("k3s", "argocd") if target is not None and w not in target.workloads]
    if missing:
        report.add(
            inventory.file,
            f"vms.{name}.workloads",
            f"must include {' and '.join(f'{w!r}'.replace(chr(39), chr(34)) for w in missing)}: "
            f"{name!r} is the Argo CD target ({key})",
        )
    # The workload cluster has one context name in profile.toml, so one rke2 VM.
    rke2 = [vm.alias for vm in inventory.vms.values() if "rke2" in vm.workloads]
    if len(rke2) > 1:
        report.add(
            inventory.file,
            f"vms.{rke2[1]}.workloads",
            f"'rke2' is on {', '.join(rke2)}; a site has one rke2 VM (context rke2_gpu)",
        )
    return target


def _check_api_server(report: Report, profile: ProfileDraft, k3s: K3sDraft, target: Vm) -> None:
    url = profile.k3s.get("api_server")
    if url is None:
        return  # The default points at the target's ansible_host, which k3s always certifies.
    host, _ = https_url_host(url)
    if host is None:
        return  # Already reported while reading the profile.
    allowed = [*k3s.sans, target.ansible_host, *k3s.node_addresses]
    if host_key(host) not in {host_key(name) for name in allowed}:
        report.add(
            profile.file,
            "k3s.api_server",
            f"host {host!r} is not in the k3s certificate: add it to k3s_config.tls-san in "
            f"{k3s.file} (certified now: {', '.join(allowed)})",
        )


def check_kubeconfig_files(report: Report, site: Site) -> None:
    """The merge target and the per-site files must be different files.

    Merging into a per-site file, or writing a per-site file over the merge target, would
    replace the operator's other contexts without a backup.
    """
    files = {
        "kube.kubeconfig": site.kubeconfig,
        "k3s.kubeconfig_path": site.k3s.kubeconfig_path,
        "rke2.kubeconfig_path": site.rke2.kubeconfig_path,
    }
    seen: dict[Path, str] = {}
    for key, path in files.items():
        real = Path(os.path.realpath(path))
        if real in seen:
            report.add(
                report.rel(site.root / PROFILE),
                key,
                f"is the same file as {seen[real]} ({path}); each kubeconfig needs its own file "
                "(the first file of KUBECONFIG and K3S_KUBECONFIG_PATH count: KUBECONFIG must "
                "start with the merge target, as `make k3s/kubeconfig/export` prints it)",
            )
        seen.setdefault(real, key)
