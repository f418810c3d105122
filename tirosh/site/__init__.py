"""Site model: load, validate and resolve ``sites/<name>/`` into frozen, typed objects.

A site is four files (``profile.toml``, ``inventory.toml``, ``k3s/vars.yml``,
``argocd/vars.yml``) and the local phase's optional four (``argocd/clusters.toml``,
``argocd/repositories.toml``, ``argocd/secrets.toml``, ``argocd/access.toml``), each read once by the same table
reader. Every problem in every file is collected before failing, so an operator fixes a broken
site in one pass instead of one error per run. Nothing here touches a host.

| module | holds |
|---|---|
| ``model`` | the model (``Site``, ``Vm``, ``K3s``, ``Rke2``, ``ArgoCD``), each setting's declaration, ``to_dict`` |
| ``values`` | checks of single values: host names, URLs, versions, digests |
| ``reader`` | the problem report and the table reader every file reader uses (``read_alone``: one file on its own) |
| ``files``, ``k3s_vars`` | one reader per site file of the deploy |
| ``clusters_file``, ``repositories_file``, ``secrets_file``, ``access_file`` | the local phase's files |
| ``environment`` | the operator's overrides (KUBECONFIG, KUBECTX, K3S_TARGET_NAME, ...) |
| ``checks`` | checks across files |
| ``vms`` | the optional ``vms.tfvars`` (Proxmox VMs) and profile.toml's ``[proxmox]`` |
| ``load`` | ``load_site``: all of the above in order |
| ``__main__`` | ``python -m tirosh.site validate|render|get|export|require-rke2 SITE`` |
"""

from __future__ import annotations

from tirosh.site.load import load_or_report, load_site
from tirosh.site.model import (
    WORKLOADS,
    ArgoCD,
    ArgoCDAccess,
    K3s,
    Problem,
    Rke2,
    Site,
    SiteError,
    Vm,
    to_dict,
)
from tirosh.site.values import is_dns_name, is_host, is_ip_address

__all__ = [
    "WORKLOADS",
    "ArgoCD",
    "ArgoCDAccess",
    "K3s",
    "Problem",
    "Rke2",
    "Site",
    "SiteError",
    "Vm",
    "is_dns_name",
    "is_host",
    "is_ip_address",
    "load_or_report",
    "load_site",
    "main",
    "to_dict",
]


def main(argv: list[str] | None = None) -> int:
    """The CLI of ``__main__``. Imported on call: importing it here would make
    ``python -m tirosh.site`` find the module loaded already and warn."""
    from tirosh.site.__main__ import main as cli

    return cli(argv)
