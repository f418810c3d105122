"""The doctor's access checks: admin still enabled, API tokens that never expire, SSO.

Read from the management cluster (argocd-cm's ``admin.enabled``, the tokens Argo CD records in
argocd-secret as ``accounts.<name>.tokens``) and from Argo CD itself: its SSO login
(``/auth/login``) must send a browser on to the provider; Argo CD answers with an error when it
cannot reach the issuer. Reads only; runs when the site has ``argocd/access.toml``.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from kubernetes import client

from local.argocd.check import Check
from local.argocd.session import endpoint, site_settings
from local.kube import client as kubeclient
from tirosh.access import ARGOCD_CM, ARGOCD_SECRET
from tirosh.answers import sanitized
from tirosh.site import Site

__all__ = ["access_checks", "tokens_without_expiry"]


def tokens_without_expiry(secret_data: Mapping[str, str]) -> list[str]:
    """``account/token-id`` of every recorded token with no expiry (``exp`` 0 or absent)."""
    found = []
    for key, value in sorted(secret_data.items()):
        if not (key.startswith("accounts.") and key.endswith(".tokens")):
            continue
        name = key.removeprefix("accounts.").removesuffix(".tokens")
        try:
            tokens: Any = json.loads(value or "[]")
        except ValueError:
            continue
        for token in tokens if isinstance(tokens, list) else []:
            if isinstance(token, dict) and not token.get("exp"):
                found.append(f"{name}/{token.get('id', '?')}")
    return found


class _Stop(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _sso(site: Site, environ: Mapping[str, str]) -> Check:
    """Argo CD's /auth/login: a redirect to the issuer, or Argo CD's error saying why not."""
    sso = site.access.sso
    assert sso is not None
    config = site_settings(site, environ)
    with endpoint(site, config) as url:
        opener = urllib.request.build_opener(_Stop(), urllib.request.ProxyHandler({}))
        try:
            with opener.open(f"{url}/auth/login", timeout=15) as answer:
                status, location = answer.status, answer.headers.get("Location", "")
                body = answer.read(2048)
        except urllib.error.HTTPError as exc:
            status, location, body = exc.code, exc.headers.get("Location", ""), exc.read(2048)
    fix = f"check [sso] issuer {sso.issuer} is reachable from Argo CD and its CA (root_ca_file)"
    if status in (302, 303, 307) and location.startswith(sso.issuer.rstrip("/")):
        return Check(True, "SSO", f"Argo CD's login goes on to {sso.issuer}")
    text = sanitized(body.decode(errors="replace"), limit=200) or f"HTTP {status}"
    return Check(False, "SSO", f"Argo CD's login does not reach {sso.issuer}: {text}", fix)


def access_checks(site: Site, environ: Mapping[str, str]) -> list[Check]:
    access = site.access
    api = kubeclient.api_client(kubeclient.kubeconfig_files(site.kubeconfig), site.argocd_context)
    try:
        core = client.CoreV1Api(api)
        namespace = site.argocd.namespace
        cm = core.read_namespaced_config_map(ARGOCD_CM, namespace).data or {}
        secret = core.read_namespaced_secret(ARGOCD_SECRET, namespace).data or {}
    finally:
        api.close()
    plain = {k: base64.b64decode(v).decode(errors="replace") for k, v in secret.items()}
    enabled = cm.get("admin.enabled", "true") != "false"
    checks = [
        Check(
            not enabled,
            "admin account",
            "enabled (the bootstrap account every operator shares)" if enabled else "disabled",
            "declare another admin way in and [admin] enabled = false in argocd/access.toml, "
            f"then make local/phase SITE={site.name}",
        )
    ]
    never = tokens_without_expiry(plain)
    checks.append(
        Check(
            not never,
            "API tokens",
            f"without expiry: {', '.join(never)}" if never else "every token expires",
            f"make argocd/account/token/revoke SITE={site.name} ACCOUNT=… TOKEN_ID=…",
        )
    )
    if access.sso is not None:
        checks.append(_sso(site, environ))
    return checks
