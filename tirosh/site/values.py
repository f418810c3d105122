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
INSTALL_SOURCES: Final = ("release", "airgap")


def is_ip_address(value: str) -> bool:
    """True for an IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


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
    """(host, None) for a usable https URL, else (None, reason)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - evaluated for its ValueError on a bad port
    except ValueError as exc:
        return None, f"is not a valid URL ({exc})"
    if parts.scheme != "https":
        return None, f"must be an https:// URL, got {url!r}"
    if not parts.hostname or not is_host(parts.hostname):
        return None, f"has no valid host name in {url!r}"
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
    """Problem with an Argo CD ``server`` (host or host:port; IPv6 in brackets), if any."""
    host, port = value, ""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        if rest and not rest.startswith(":"):
            return f"must be HOST or HOST:PORT, got {value!r}"
        port = rest[1:]
    elif value.count(":") == 1:
        host, port = value.split(":")
    if not is_host(host):
        return f"must be an IP address or DNS name (optionally :PORT), got {value!r}"
    if port and not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        return f"has an invalid port in {value!r}"
    return None


def host_problem(value: str) -> str | None:
    return None if is_host(value) else f"must be an IP address or DNS name, got {value!r}"


def dns_name_problem(value: str) -> str | None:
    if is_ip_address(value) or not is_dns_name(value):
        return f"must be a DNS name, got {value!r}"
    return None


def k8s_name_problem(value: str) -> str | None:
    if K8S_NAME.fullmatch(value):
        return None
    return f"must be a Kubernetes name (lowercase letters, digits, '-'), got {value!r}"


def user_problem(value: str) -> str | None:
    # It lands in ssh_config and on pyinfra's command line.
    message = f"must be a login name (letters, digits, '.', '_', '-'), got {value!r}"
    return None if _USER.fullmatch(value) else message


def proxmox_vm_name_problem(value: str) -> str | None:
    return None if is_dns_name(value) else f"must be a DNS name as Proxmox requires, got {value!r}"


def become_user_problem(value: str) -> str | None:
    # The deploy writes /usr/local/bin, /etc/rancher and systemd units: only root can.
    if value == "root":
        return None
    return f"must be root (the deploy installs system files), got {value!r}"


def k3s_version_problem(value: str) -> str | None:
    if _K3S_VERSION.fullmatch(value):
        return None
    return f'must look like "v1.34.3+k3s1", got {value!r}'


def install_source_problem(value: str) -> str | None:
    if value in INSTALL_SOURCES:
        return None
    return f"must be one of {', '.join(INSTALL_SOURCES)}"


def argocd_version_problem(value: str) -> str | None:
    # "stable" is accepted with a warning (files.read_argocd_vars): a mutable pin.
    if value == "stable" or _ARGOCD_VERSION.fullmatch(value):
        return None
    return f'must look like "v3.5.1" or be "stable", got {value!r}'


def argocd_namespace_problem(value: str) -> str | None:
    # The official manifest's ClusterRoleBindings name the service accounts in "argocd".
    if value == "argocd":
        return None
    return "must be argocd: the official manifest binds its roles there"


def sha256_problem(value: str) -> str | None:
    if _SHA256.fullmatch(value):
        return None
    return "must be 64 lowercase hex digits (a sha256 digest)"
