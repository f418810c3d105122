"""Pull the clusters' admin kubeconfigs and merge them into the operator's under named contexts.

The k3s cluster on the management VM becomes `<site>/k3s`, the workload cluster on the `rke2`
host `<site>/rke2/gpu` (names from profile.toml). Alone: ``pyinfra inventories/<site>.py
deploys/kubeconfig.py`` (``make k3s/kubeconfig``, ``k3s/kubeconfig/merge``,
``rke2/kubeconfig/merge``).
"""

from __future__ import annotations

from pathlib import Path

from pyinfra import host
from pyinfra.api import Host, deploy

from deploys import MANAGEMENT, RKE2, prepare_run, run_alone, site_of
from operations import kubeconfig
from tirosh import k3s
from tirosh.site import Site

RKE2_KUBECONFIG_PATH = "/etc/rancher/rke2/rke2.yaml"


@deploy("kubeconfig")
def management_context(site: Site, merge_into: Path | None) -> None:
    """The k3s cluster's context, written to its per-site file and merged into ``merge_into``."""
    kubeconfig.pulled(
        name=f"Merge kubeconfig context {site.argocd_context}",
        remote_path=k3s.KUBECONFIG_PATH,
        context=site.argocd_context,
        server=site.k3s.api_server,
        site_file=site.k3s.kubeconfig_path,
        merge_into=merge_into,
    )


@deploy("kubeconfig")
def rke2_context(site: Site, merge_into: Path | None) -> None:
    """The workload cluster's context; the management cluster's stays the current one."""
    kubeconfig.pulled(
        name=f"Merge kubeconfig context {site.rke2_context}",
        remote_path=RKE2_KUBECONFIG_PATH,
        context=site.rke2_context,
        server=site.rke2.api_server or "",  # always set when the site has an rke2 VM
        site_file=site.rke2.kubeconfig_path,
        merge_into=merge_into,
        # The management cluster's context is the one to land in, whichever merges first.
        current=False,
    )


def for_host(current: Host) -> None:
    site = site_of(current)
    # `--data kubeconfig_merge=false` (make k3s/kubeconfig) writes only the per-site files.
    merge_into = site.kubeconfig if current.data.get("kubeconfig_merge", True) else None
    if MANAGEMENT in current.groups:
        management_context(site=site, merge_into=merge_into)
    if RKE2 in current.groups:
        rke2_context(site=site, merge_into=merge_into)


if run_alone(__name__):
    prepare_run(host)
    for_host(host)
