"""Checks of single values of a site: host names, addresses, URLs, versions, digests.

The ``*_problem`` functions return the message to report for a value of the right type, or
None when it is fine; they are the ``check`` of the settings declared in ``model.py``.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final
from urllib.parse import urlsplit

from tirosh import urls
from tirosh.inputs import excerpt

# A site or VM alias: it names a folder and an inventory host, and reaches the Makefile's SITE.
NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_DNS_LABEL: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
K8S_NAME: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# re.ASCII, or \d also takes digits of other scripts.
_K3S_VERSION: Final = re.compile(r"v\d+\.\d+\.\d+(?:-rc\d+)?\+k3s\d+", re.ASCII)
_ARGOCD_VERSION: Final = re.compile(r"v\d+\.\d+\.\d+(?:-rc\d+)?", re.ASCII)
_SHA256: Final = re.compile(r"[0-9a-f]{64}")
# A login name as useradd and ssh_config take it (no leading '-', no spaces or '#').
_USER: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,31}", re.ASCII)
# An Argo CD cluster name: it ends up in UI paths and ApplicationSet templates ('/' breaks both);
# the rule of argocd/clusters.toml (tirosh.clusters).
_CLUSTER_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}", re.ASCII)
INSTALL_SOURCES: Final = ("release", "airgap")


def is_ip_address(value: str) -> bool:
    """True for an IPv4 or IPv6 address, without a zone (``fe80::1%eth0``: see
    ``address_problem``)."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return "%" not in value


def address_problem(host: str) -> str | None:
    """Why ``host`` cannot be an address other machines are told to reach, or None: an IPv6
    address with a zone (``%eth0``, ``%25eth0`` in a URL) or a link-local one (``fe80::/10``)
    names an interface of one machine, which means nothing in a kubeconfig, an Argo CD login
    or an SSH inventory elsewhere."""
    address_text, zone, _ = host.partition("%")
    try:
        address = ipaddress.ip_address(address_text)
    except ValueError:
        return None
    if zone or (address.version == 6 and address.is_link_local):
        return (
            f"is a link-local IPv6 address{' with a zone' if zone else ''} ({excerpt(host)}), "
            "which names an interface of one machine: use a routable address or a DNS name"
        )
    return None


def is_dns_name(value: str) -> bool:
    """True for an RFC 1123 host name: labels of 1-63 letters, digits or hyphens, no leading or
    trailing hyphen, at most 253 characters. A single label such as ``localhost`` is fine."""
    if not value or len(value) > 253:
        return False
    labels = value.split(".")
    if not all(_DNS_LABEL.fullmatch(label) for label in labels):
        return False
    # An all-numeric last label would make typos such as 10.0.0.300 pass as a "name".
    return not labels[-1].isdigit()


def is_host(value: str) -> bool:
    """True for an IP address or a DNS name."""
    return is_ip_address(value) or is_dns_name(value)


def host_key(host: str) -> str:
    """A host as compared: addresses by value (::1 == 0:0::1), names case-insensitively."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host.lower()


def url_host(host: str) -> str:
    """``host`` as it stands in a URL: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host


def https_url_host(url: str) -> tuple[str | None, str | None]:
    """(host, None) for a usable https API URL (``https://HOST[:PORT]``), else (None, reason)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return None, f"is not a valid URL ({exc})"
    if parts.scheme != "https":
        return None, f"must be an https:// URL, got {excerpt(url)}"
    if parts.hostname and (problem := address_problem(parts.hostname)):
        return None, problem
    if not parts.hostname or not is_host(parts.hostname):
        return None, f"has no valid host name in {excerpt(url)}"
    if port == 0 or parts.netloc.endswith(":"):
        return None, f"has an invalid port (give 1 to 65535 after ':'), got {excerpt(url)}"
    # client-go appends /api, /apis to the server: a path, query or fragment here either
    # points at something else or is dropped; the kubeconfig server is scheme, host and port.
    if parts.path or "?" in url or "#" in url:
        return (
            None,
            f"must be https://HOST[:PORT] without a path, query or fragment, got {excerpt(url)}",
        )
    return parts.hostname, None


def https_url_problem(url: str) -> str | None:
    # No credentials or stray characters in a URL that lands in kubeconfigs.
    return urls.url_problem(url, https_only=True) or https_url_host(url)[1]


def download_url_problem(url: str) -> str | None:
    """A download URL without credentials or stray characters. Whether plain http:// needs a
    pinned digest depends on another setting: the file readers check that."""
    return urls.url_problem(url)


def manifest_url_problem(url: str) -> str | None:
    # `{version}` is replaced by the version, which is checked on its own (a valid one is
    # URL-safe).
    return download_url_problem(url.replace("{version}", "v0.0.0"))


def host_port_problem(value: str) -> str | None:
    """Problem with an Argo CD ``server`` (HOST or HOST:PORT; IPv6 in brackets), if any."""
    host, port = value, None
    if value.startswith("["):
        host, closed, rest = value[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            return f"must be HOST or HOST:PORT, got {excerpt(value)}"
        if ":" not in host:
            return f"brackets are for IPv6 addresses only, got {excerpt(value)}"
        port = rest[1:] if rest else None
    elif value.count(":") > 1:
        # ::1:8080 could be an address or an address and a port: argocd and URLs need brackets.
        return f"an IPv6 address must be in brackets ([::1] or [::1]:443), got {excerpt(value)}"
    elif ":" in value:
        host, port = value.split(":")
    if problem := address_problem(host):
        return problem
    if not is_host(host):
        return f"must be an IP address or DNS name (optionally :PORT), got {excerpt(value)}"
    if port is not None and not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        return f"has an invalid port (give 1 to 65535 after ':'), got {excerpt(value)}"
    return None


def host_problem(value: str) -> str | None:
    if problem := address_problem(value):
        return problem
    return None if is_host(value) else f"must be an IP address or DNS name, got {excerpt(value)}"


def cluster_name_problem(value: str) -> str | None:
    if _CLUSTER_NAME.fullmatch(value):
        return None
    return (
        "must be an Argo CD cluster name (letters, digits, '.', '_', '-'; no '/', which breaks "
        f"the UI's paths and ApplicationSet templates), got {excerpt(value)}"
    )


def dns_name_problem(value: str) -> str | None:
    if is_ip_address(value) or not is_dns_name(value):
        return f"must be a DNS name, got {excerpt(value)}"
    return None


def k8s_name_problem(value: str) -> str | None:
    if K8S_NAME.fullmatch(value):
        return None
    return f"must be a Kubernetes name (lowercase letters, digits, '-'), got {excerpt(value)}"


def user_problem(value: str) -> str | None:
    # It lands in ssh_config and on pyinfra's command line.
    message = f"must be a login name (letters, digits, '.', '_', '-'), got {excerpt(value)}"
    return None if _USER.fullmatch(value) else message


def proxmox_vm_name_problem(value: str) -> str | None:
    return (
        None
        if is_dns_name(value)
        else f"must be a DNS name as Proxmox requires, got {excerpt(value)}"
    )


def become_user_problem(value: str) -> str | None:
    # The deploy writes /usr/local/bin, /etc/rancher and systemd units: only root can.
    if value == "root":
        return None
    return f"must be root (the deploy installs system files), got {excerpt(value)}"


def k3s_version_problem(value: str) -> str | None:
    if _K3S_VERSION.fullmatch(value):
        return None
    return f'must look like "v1.34.3+k3s1", got {excerpt(value)}'


def install_source_problem(value: str) -> str | None:
    if value in INSTALL_SOURCES:
        return None
    return f"must be one of {', '.join(INSTALL_SOURCES)}"


def argocd_version_problem(value: str) -> str | None:
    # "stable" is accepted with a warning (files.read_argocd_vars): a mutable pin.
    if value == "stable" or _ARGOCD_VERSION.fullmatch(value):
        return None
    return f'must look like "v3.5.1" or be "stable", got {excerpt(value)}'


def argocd_namespace_problem(value: str) -> str | None:
    # The official manifest's ClusterRoleBindings name the service accounts in "argocd".
    if value == "argocd":
        return None
    return "must be argocd: the official manifest binds its roles there"


def sha256_problem(value: str) -> str | None:
    if _SHA256.fullmatch(value):
        return None
    return "must be 64 lowercase hex digits (a sha256 digest)"
