"""Argo CD on the management cluster: the official manifest, server settings, Ingress."""

from pyinfra import host

from operations import argocd
from tirosh.site import Site

site: Site = host.data.site_model  # validated once, by the inventory
settings = site.argocd

if "management" in host.groups:
    argocd.installed(
        name=f"Install Argo CD {settings.version} (server-side apply)",
        version=settings.version,
        manifest_file=settings.manifest_file,
        manifest_url=settings.manifest_url,
        manifest_sha256=settings.manifest_sha256,
        namespace=settings.namespace,
        allow_downgrade=settings.allow_downgrade,
    )
    argocd.server_insecure(
        name=f"argocd-server runs with server.insecure={str(settings.server_insecure).lower()}",
        insecure=settings.server_insecure,
        namespace=settings.namespace,
    )
    argocd.ingress(
        name=f"Argo CD Ingress {settings.ingress_host}"
        if settings.ingress_enabled
        else "No Argo CD Ingress",
        enabled=settings.ingress_enabled,
        host_name=settings.ingress_host,
        class_name=settings.ingress_class_name,
        service_port=settings.ingress_service_port,
        tls=settings.ingress_tls_enabled,
        tls_secret_name=settings.ingress_tls_secret_name,
        namespace=settings.namespace,
    )
