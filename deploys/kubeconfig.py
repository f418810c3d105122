"""Pull the clusters' admin kubeconfigs and merge them into the operator's under named contexts.

The k3s cluster on the management VM becomes `<site>/k3s`, the workload cluster on the `rke2`
host `<site>/rke2/gpu` (names from profile.toml).
"""

from pyinfra import host

from operations import kubeconfig
from tirosh import k3s
from tirosh.site import Site

site: Site = host.data.site_model  # validated once, by the inventory
# `--data kubeconfig_merge=false` (make k3s/kubeconfig) writes only the per-site files.
merge_into = site.kubeconfig if host.data.get("kubeconfig_merge", True) else None

if "management" in host.groups:
    kubeconfig.pulled(
        name=f"Merge kubeconfig context {site.argocd_context}",
        remote_path=k3s.KUBECONFIG_PATH,
        context=site.argocd_context,
        server=site.k3s.api_server,
        site_file=site.k3s.kubeconfig_path,
        merge_into=merge_into,
    )

if "rke2" in host.groups:
    kubeconfig.pulled(
        name=f"Merge kubeconfig context {site.rke2_context}",
        remote_path="/etc/rancher/rke2/rke2.yaml",
        context=site.rke2_context,
        server=site.rke2.api_server or "",  # always set when the site has an rke2 VM
        site_file=site.rke2.kubeconfig_path,
        merge_into=merge_into,
        # The management cluster's context is the one to land in, whichever merges first.
        current=False,
    )
