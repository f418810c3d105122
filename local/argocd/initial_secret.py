"""``argocd-initial-admin-secret``: read or delete it, over SSH (default) or the kube context.

Over SSH (``local.remote``) is the runbook's way and needs only the site's inventory.
``ARGOCD_INITIAL_SECRET_FROM=context`` reads it through the management context instead
(``KUBECONFIG``/``KUBECTX``), for an operator whose kubeconfig is merged but who has no SSH
login on the VM. Either way the password stays in this process's memory.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Final

from kubernetes import client

from local.kube import client as kubeclient
from tirosh.argocd import INITIAL_ADMIN_SECRET
from tirosh.errors import OperatorError
from tirosh.site import Site

__all__ = ["INITIAL_SECRET", "SOURCES", "SecretAccessError", "delete", "read", "source"]

INITIAL_SECRET: Final = INITIAL_ADMIN_SECRET
SOURCES: Final = ("ssh", "context")


class SecretAccessError(OperatorError, RuntimeError):
    """The Secret could not be read or deleted; the message says where and why."""


def source(environ: Mapping[str, str]) -> str:
    value = environ.get("ARGOCD_INITIAL_SECRET_FROM", "ssh") or "ssh"
    if value not in SOURCES:
        raise SecretAccessError(
            f"ARGOCD_INITIAL_SECRET_FROM: must be ssh or context, got {value!r}"
        )
    return value


def _core(site: Site) -> client.CoreV1Api:
    try:
        return client.CoreV1Api(kubeclient.api_client(site.kubeconfig, site.argocd_context))
    except kubeclient.KubeconfigError as exc:
        raise SecretAccessError(str(exc)) from None


def read(site: Site, environ: Mapping[str, str]) -> str | None:
    """The initial admin password, or None when the Secret no longer exists."""
    namespace = site.argocd.namespace
    if source(environ) == "ssh":
        from local import remote  # pyinfra: imported only by the commands that use SSH

        try:
            return remote.read_initial_password(site)
        except remote.RemoteError as exc:
            raise SecretAccessError(f"{exc} (or set ARGOCD_INITIAL_SECRET_FROM=context)") from None
    try:
        secret = _core(site).read_namespaced_secret(INITIAL_SECRET, namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise SecretAccessError(
            f"cannot read {namespace}/{INITIAL_SECRET} through context {site.argocd_context}: "
            f"{exc.status} {exc.reason}"
        ) from None
    data = (secret.data or {}).get("password")
    return base64.b64decode(data).decode() if data else None


def delete(site: Site, environ: Mapping[str, str]) -> None:
    namespace = site.argocd.namespace
    if source(environ) == "ssh":
        from local import remote

        try:
            remote.delete_initial_secret(site)
        except remote.RemoteError as exc:
            raise SecretAccessError(str(exc)) from None
        return
    try:
        _core(site).delete_namespaced_secret(INITIAL_SECRET, namespace)
    except client.ApiException as exc:
        if exc.status != 404:
            raise SecretAccessError(
                f"cannot delete {namespace}/{INITIAL_SECRET}: {exc.status} {exc.reason}"
            ) from None
