"""Argo CD on the management cluster: the official manifest, server settings, Ingress.

Alone: ``pyinfra inventories/<site>.py deploys/argocd.py`` (``make argocd/install``).
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import Host, deploy

from deploys import MANAGEMENT, prepare_run, run_alone, site_of
from operations import argocd
from tirosh.site import ArgoCD


@deploy("argocd")
def argocd_server(settings: ArgoCD) -> None:
    """Install or upgrade Argo CD, then set ``server.insecure`` and the Ingress as ``settings`` say."""
    argocd.installed(
        name=f"Install Argo CD {settings.version} (server-side apply)",
        version=settings.version,
        manifest_file=settings.manifest_file,
        manifest_url=settings.manifest_url,
        manifest_sha256=settings.manifest_sha256,
        namespace=settings.namespace,
        allow_downgrade=settings.allow_downgrade,
    )
    insecure = str(settings.server_insecure).lower()
    argocd.server_insecure(
        name=f"argocd-server runs with server.insecure={insecure}",
        insecure=settings.server_insecure,
        namespace=settings.namespace,
    )
    ingress = settings.ingress_host if settings.ingress_enabled else None
    argocd.ingress(
        name=f"Argo CD Ingress {ingress}" if ingress else "No Argo CD Ingress",
        enabled=settings.ingress_enabled,
        host_name=settings.ingress_host,
        class_name=settings.ingress_class_name,
        service_port=settings.ingress_service_port,
        tls=settings.ingress_tls_enabled,
        tls_secret_name=settings.ingress_tls_secret_name,
        namespace=settings.namespace,
    )


def for_host(current: Host) -> None:
    if MANAGEMENT in current.groups:
        argocd_server(settings=site_of(current).argocd)


if run_alone(__name__):
    prepare_run(host)
    for_host(host)
