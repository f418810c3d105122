"""Whether Argo CD's API answers: directly at the site's ``server``, or through a port-forward.

``check_api`` asks the anonymous ``/api/version``; ``site_api_check`` picks the way from the
site (``auto_port_forward``). ``local.argocd.status`` reports the result.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Final
from urllib.parse import urlsplit

from local.kube import client as kubeclient
from local.kube import port_forward
from tirosh.site import Site

API_TIMEOUT: Final = 5.0

# (ok, one-line result): ok is None when nothing was checked.
ApiCheck = Callable[[], tuple[bool | None, str]]


def one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def check_api(server: str, port_forward_url: str | None) -> tuple[bool | None, str]:
    """GET Argo CD's anonymous ``/api/version`` at the port-forward URL, else ``https://server``."""
    base = port_forward_url.rstrip("/") if port_forward_url else f"https://{server}"
    url = f"{base}/api/version"
    handlers: list[urllib.request.BaseHandler] = []
    if _is_loopback(url):
        # A port-forward is on this machine: an HTTP(S)_PROXY from the environment must not
        # carry the request elsewhere.
        handlers.append(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.build_opener(*handlers).open(request, timeout=API_TIMEOUT) as response:
            body = response.read(65536)
    except urllib.error.HTTPError as exc:
        return False, f"error answer at {url}: HTTP {exc.code} {one_line(exc.reason)}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        return False, f"no answer at {url}: {one_line(str(reason))}"
    try:
        version = json.loads(body).get("Version")
    except (ValueError, AttributeError):
        version = None
    if not isinstance(version, str) or not version:
        return False, f"unexpected answer at {url}: no Argo CD version in the response"
    return True, f"answers at {url}: {one_line(version)}"


def _free_local_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def site_api_check(site: Site) -> ApiCheck:
    """The API check for a site: through a port-forward when the site says so, else direct."""
    argocd = site.argocd
    if not argocd.auto_port_forward:
        return lambda: check_api(argocd.server, None)

    def through_port_forward() -> tuple[bool | None, str]:
        context, namespace = site.argocd_context, argocd.namespace
        try:
            # A free port, not 8080: an operator's own `make argocd/port-forward` may hold it.
            with port_forward.argocd_server(
                kubeclient.kubeconfig_files(site.kubeconfig),
                context,
                namespace,
                local_port=_free_local_port(),
            ) as url:
                return check_api(argocd.server, url)
        except port_forward.NoServerPod:
            return False, (
                f"not checked: no argocd-server pod is running in namespace {namespace} "
                "to port-forward to"
            )
        except port_forward.PortForwardError as exc:
            return False, f"port-forward failed: {one_line(str(exc))}"

    return through_port_forward
