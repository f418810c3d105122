"""Site model: load, validate and resolve ``sites/<name>/`` into frozen, typed objects.

A site is four files (``profile.toml``, ``inventory.toml``, ``k3s/vars.yml``,
``argocd/vars.yml``). Every problem in every file is collected before failing, so an operator
fixes a broken site in one pass instead of one error per run. Nothing here touches a host.

Usage: ``python -m tirosh.site validate SITE`` or ``python -m tirosh.site render SITE``.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import ipaddress
import json
import os
import re
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

from tirosh import argocd as argocd_manifest
from tirosh import inputs, k3s_config, kubeconfig, strict_yaml, urls

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python < 3.11 only
    import tomli as tomllib  # type: ignore[no-redef,import-not-found,unused-ignore]

__all__ = [
    "ArgoCD",
    "K3s",
    "Problem",
    "Rke2",
    "Site",
    "SiteError",
    "Vm",
    "is_dns_name",
    "is_host",
    "is_ip_address",
    "load_site",
    "main",
    "to_dict",
]

T = TypeVar("T")

PROFILE: Final = "profile.toml"
INVENTORY: Final = "inventory.toml"
K3S_VARS: Final = "k3s/vars.yml"
ARGOCD_VARS: Final = "argocd/vars.yml"
ENVIRONMENT: Final = "environment"

WORKLOADS: Final = ("k3s", "argocd", "rke2")
INSTALL_SOURCES: Final = ("release", "airgap")
DEFAULT_SSH_PORT: Final = 22
DEFAULT_RELEASE_URL: Final = "https://github.com/k3s-io/k3s/releases/download"
DEFAULT_ARGOCD_VERSION: Final = "v3.5.1"
DEFAULT_MANIFEST_URL: Final = (
    "https://raw.githubusercontent.com/argoproj/argo-cd/{version}/manifests/install.yaml"
)
STABLE_WARNING: Final = "argocd_version: stable is a mutable pin"

# The repository root is the parent of the package directory (it holds sites/).
_DEFAULT_REPO_ROOT: Final = Path(__file__).resolve().parent.parent

_SITE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_ALIAS = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_DNS_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_K8S_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# issue 8: re.ASCII, or \d also takes digits of other scripts.
_K3S_VERSION = re.compile(r"v\d+\.\d+\.\d+(?:-rc\d+)?\+k3s\d+", re.ASCII)
_ARGOCD_VERSION = re.compile(r"v\d+\.\d+\.\d+(?:-rc\d+)?", re.ASCII)
_SHA256 = re.compile(r"[0-9a-f]{64}")
# issue 8: a login name as useradd and ssh_config take it (no leading '-', no spaces or '#').
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,31}", re.ASCII)
_MISSING: Final = object()

_PROFILE_KEYS: Final = ("kube", "argocd", "k3s", "rke2")
_KUBE_KEYS: Final = ("kubeconfig", "contexts")
_CONTEXT_KEYS: Final = ("argocd", "rke2_gpu")
_PROFILE_ARGOCD_KEYS: Final = (
    "target_name",
    "server",
    "login_args",
    "auto_port_forward",
    "cluster_context",
    "cluster_name",
)
_CLUSTER_KEYS: Final = ("api_server", "kubeconfig_path")
_VM_KEYS: Final = (
    "ansible_host",
    "ansible_user",
    "ansible_become_user",
    "proxmox_vm_name",
    "workloads",
    "ssh_port",
    "ssh_key",
    "ssh_known_hosts_file",
)
_K3S_KEYS: Final = (
    "k3s_version",
    "k3s_install_source",
    "k3s_release_url",
    "k3s_airgap_dir",
    "k3s_sha256",
    "k3s_config",
)
_ARGOCD_KEYS: Final = (
    "argocd_ingress_enabled",
    "argocd_ingress_class_name",
    "argocd_ingress_host",
    "argocd_ingress_service_port",
    "argocd_server_insecure",
    "argocd_ingress_tls_enabled",
    "argocd_ingress_tls_secret_name",
    "argocd_version",
    "argocd_manifest_url",
    "argocd_manifest_file",
    "argocd_manifest_sha256",
    "argocd_namespace",
    "argocd_rollout_timeout",
    "argocd_allow_downgrade",
)


# --------------------------------------------------------------------------- public model


@dataclass(frozen=True)
class Vm:
    alias: str
    ansible_host: str
    ansible_user: str
    ansible_become_user: str
    proxmox_vm_name: str
    workloads: tuple[str, ...]
    ssh_port: int | None
    ssh_key: Path | None
    ssh_known_hosts_file: Path | None


@dataclass(frozen=True)
class K3s:
    version: str
    install_source: str
    release_url: str
    airgap_dir: Path | None
    config: dict[str, Any]
    api_server: str
    kubeconfig_path: Path
    sha256: str | None = None


@dataclass(frozen=True)
class Rke2:
    api_server: str | None
    kubeconfig_path: Path


@dataclass(frozen=True)
class ArgoCD:
    target_name: str
    server: str
    login_args: str
    auto_port_forward: bool
    cluster_context: str
    cluster_name: str
    namespace: str
    version: str
    manifest_url: str
    manifest_file: Path | None
    manifest_sha256: str | None
    rollout_timeout: int
    allow_downgrade: bool
    ingress_enabled: bool
    ingress_class_name: str
    ingress_host: str
    ingress_service_port: int
    ingress_tls_enabled: bool
    ingress_tls_secret_name: str
    server_insecure: bool


@dataclass(frozen=True)
class Site:
    name: str
    root: Path
    repo_root: Path
    kubeconfig: Path
    argocd_context: str
    rke2_context: str
    vms: dict[str, Vm]
    k3s: K3s
    rke2: Rke2
    argocd: ArgoCD
    warnings: tuple[str, ...]

    @property
    def target(self) -> Vm:
        """The VM that runs k3s and Argo CD."""
        return self.vms[self.argocd.target_name]

    @property
    def rke2_vm(self) -> Vm | None:
        """The first VM carrying the rke2 workload, if the site has one."""
        return next((vm for vm in self.vms.values() if "rke2" in vm.workloads), None)


@dataclass(frozen=True)
class Problem:
    file: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.message}"


class SiteError(Exception):
    """A site failed to load; ``problems`` lists every mistake found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(problem) for problem in self.problems)


# --------------------------------------------------------------------------- host names


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


def _host_key(host: str) -> str:
    # Compare addresses by value (::1 == 0:0::1) and names case-insensitively.
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host.lower()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _https_url_host(url: str) -> tuple[str | None, str | None]:
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


def _host_port_problem(value: str) -> str | None:
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


# --------------------------------------------------------------------------- problem collection


def _describe(value: Any) -> str:
    """Short, operator-facing description of a wrongly typed value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value}"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return f"string {json.dumps(text)}"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__


def _one_line(text: str) -> str:
    return " ".join(text.split())


class _Report:
    """Problems and warnings of one load, with file names shown relative to the repo root."""

    def __init__(self, repo_root: Path, environ: Mapping[str, str]) -> None:
        self.repo_root = repo_root
        self.environ = environ
        self.problems: list[Problem] = []
        self.warnings: list[str] = []

    def rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.repo_root).as_posix()
        except ValueError:
            return str(path)

    def add(self, file: str, key: str, message: str) -> None:
        self.problems.append(Problem(file, key, message))

    def resolve(self, text: str, base: Path) -> Path:
        """Expand ``~`` (HOME from the given environment) and anchor relative paths at base."""
        home = self.environ.get("HOME")
        if home and (text == "~" or text.startswith("~/")):
            text = home + text[1:]
        path = Path(os.path.expanduser(text))
        return path if path.is_absolute() else base / path


class _Table:
    """One mapping of a site file. Accessors record a Problem and return None instead of
    raising, so that a single run reports every mistake."""

    def __init__(
        self, report: _Report, file: str, data: Mapping[Any, Any], prefix: str = ""
    ) -> None:
        self.report = report
        self.file = file
        self.data = data
        self.prefix = prefix

    def key_path(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def problem(self, key: str, message: str) -> None:
        self.report.add(self.file, self.key_path(key), message)

    def allow(self, allowed: tuple[str, ...]) -> None:
        for key in self.data:
            if key in allowed:
                continue
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f'did you mean "{close[0]}"?' if close else f"known keys: {', '.join(allowed)}"
            self.problem(str(key), f"unknown key ({hint})")

    def _raw(self, key: str, required: bool) -> Any:
        if key in self.data:
            return self.data[key]
        if required:
            self.problem(key, "required key is missing")
        return _MISSING

    def string(self, key: str, *, required: bool = False, allow_empty: bool = False) -> str | None:
        value = self._raw(key, required)
        if value is _MISSING:
            return None
        if not isinstance(value, str):
            self.problem(key, f"must be a string, got {_describe(value)}")
            return None
        if not value.strip() and not allow_empty:
            self.problem(key, "must not be empty")
            return None
        if problem := inputs.text_problem(value):  # issue 8: NUL, newlines, escapes, bidi
            self.problem(key, problem)
            return None
        return value

    def boolean(self, key: str, *, required: bool = False) -> bool | None:
        value = self._raw(key, required)
        if value is _MISSING:
            return None
        if not isinstance(value, bool):
            self.problem(key, f"must be true or false, got {_describe(value)}")
            return None
        return value

    def integer(
        self, key: str, *, required: bool = False, minimum: int = 1, maximum: int | None = None
    ) -> int | None:
        value = self._raw(key, required)
        if value is _MISSING:
            return None
        # bool is an int subclass in Python; `true` is never a meaningful port or timeout.
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(key, f"must be an integer, got {_describe(value)}")
            return None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"at least {minimum}" if maximum is None else f"{minimum} to {maximum}"
            self.problem(key, f"must be {bounds}, got {value}")
            return None
        return value

    def string_list(self, key: str, *, required: bool = False) -> list[str] | None:
        value = self._raw(key, required)
        if value is _MISSING:
            return None
        if not isinstance(value, list):
            self.problem(key, f"must be a list of strings, got {_describe(value)}")
            return None
        ok = True
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                self.problem(
                    f"{key}[{index}]", f"must be a non-empty string, got {_describe(item)}"
                )
                ok = False
            elif problem := inputs.text_problem(item):  # issue 8
                self.problem(f"{key}[{index}]", problem)
                ok = False
        return list(value) if ok else None

    def path(self, key: str, *, required: bool = False) -> Path | None:
        text = self.string(key, required=required)
        return None if text is None else self.report.resolve(text, self.report.repo_root)

    def table(self, key: str, *, required: bool = False) -> _Table | None:
        value = self._raw(key, required)
        if value is _MISSING:
            return None
        if not isinstance(value, dict):
            self.problem(key, f"must be a table/mapping, got {_describe(value)}")
            return None
        return _Table(self.report, self.file, value, self.key_path(key))


# --------------------------------------------------------------------------- file readers


def _read_file(report: _Report, path: Path) -> str | None:
    file = report.rel(path)
    if not path.is_file():
        report.add(file, "-", "required file is missing")
        return None
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        report.add(file, "-", f"cannot read file: {exc}")
        return None


def _read_toml(report: _Report, path: Path) -> _Table | None:
    text = _read_file(report, path)
    if text is None:
        return None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The message carries "(at line N, column M)".
        report.add(report.rel(path), "-", f"invalid TOML: {_one_line(str(exc))}")
        return None
    return _Table(report, report.rel(path), data)


def _read_yaml(report: _Report, path: Path) -> _Table | None:
    text = _read_file(report, path)
    if text is None:
        return None
    try:
        data = strict_yaml.load(text)  # issue 8: no duplicate keys, anchors, aliases, deep nesting
    except ValueError as exc:
        report.add(report.rel(path), "-", str(exc))
        return None
    if data is None:
        data = {}  # An empty file is an empty mapping: its missing keys are reported one by one.
    if not isinstance(data, dict):
        report.add(report.rel(path), "-", f"must be a mapping of variables, got {_describe(data)}")
        return None
    return _Table(report, report.rel(path), data)


# --------------------------------------------------------------------------- per-file drafts
# Drafts hold what each file says, None where a value is missing or invalid (a Problem was
# recorded). The final Site is only built when no problem was found at all.


@dataclass
class _ProfileDraft:
    file: str = PROFILE
    kubeconfig: Path | None = None
    argocd_context: str | None = None
    rke2_context: str | None = None
    target_name: str | None = None
    server: str | None = None
    login_args: str | None = None
    auto_port_forward: bool | None = None
    cluster_context: str | None = None
    cluster_name: str | None = None
    k3s_api_server: str | None = None
    k3s_kubeconfig_path: Path | None = None
    rke2_api_server: str | None = None
    rke2_kubeconfig_path: Path | None = None
    # Where overridable values came from, so problems point at the file or variable to fix.
    target_source: tuple[str, str] = (PROFILE, "argocd.target_name")
    context_source: tuple[str, str] = (PROFILE, "kube.contexts.argocd")


@dataclass
class _InventoryDraft:
    file: str = INVENTORY
    parsed: bool = False  # False when there is no usable [vms] table: skip cross-checks.
    aliases: list[str] = field(default_factory=list)
    vms: dict[str, Vm] = field(default_factory=dict)


@dataclass
class _K3sDraft:
    file: str = K3S_VARS
    # False when the file or k3s_config is unusable: the certificate names are then unknown and
    # the api_server check would only report a follow-up error.
    sans_known: bool = False
    version: str | None = None
    install_source: str | None = None
    release_url: str | None = None
    airgap_dir: Path | None = None
    sha256: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    sans: list[str] = field(default_factory=list)
    node_addresses: list[str] = field(default_factory=list)
    disable: list[str] = field(default_factory=list)


@dataclass
class _ArgoDraft:
    file: str = ARGOCD_VARS
    ingress_enabled: bool | None = None
    ingress_class_name: str | None = None
    ingress_host: str | None = None
    ingress_service_port: int | None = None
    server_insecure: bool | None = None
    ingress_tls_enabled: bool | None = None
    ingress_tls_secret_name: str | None = None
    version: str | None = None
    manifest_url: str | None = None
    manifest_file: Path | None = None
    manifest_sha256: str | None = None
    namespace: str | None = None
    rollout_timeout: int | None = None
    allow_downgrade: bool | None = None


def _parse_profile(report: _Report, path: Path) -> _ProfileDraft:
    file = report.rel(path)
    draft = _ProfileDraft(file=file)
    draft.target_source = (file, "argocd.target_name")
    draft.context_source = (file, "kube.contexts.argocd")
    top = _read_toml(report, path)
    if top is None:
        return draft
    top.allow(_PROFILE_KEYS)
    kube = top.table("kube", required=True)
    if kube is not None:
        kube.allow(_KUBE_KEYS)
        draft.kubeconfig = kube.path("kubeconfig", required=True)
        _warn_kubeconfig_path(kube, "kubeconfig", draft.kubeconfig)  # issue 8
        contexts = kube.table("contexts", required=True)
        if contexts is not None:
            contexts.allow(_CONTEXT_KEYS)
            draft.argocd_context = contexts.string("argocd", required=True)
            draft.rke2_context = contexts.string("rke2_gpu", required=True)
    argocd = top.table("argocd", required=True)
    if argocd is not None:
        _parse_profile_argocd(argocd, draft)
    k3s = top.table("k3s")
    if k3s is not None:
        draft.k3s_api_server, draft.k3s_kubeconfig_path = _parse_cluster(k3s)
    rke2 = top.table("rke2")
    if rke2 is not None:
        draft.rke2_api_server, draft.rke2_kubeconfig_path = _parse_cluster(rke2)
    return draft


def _parse_cluster(t: _Table) -> tuple[str | None, Path | None]:
    """The optional [k3s] / [rke2] table: api_server (https URL) and kubeconfig_path."""
    t.allow(_CLUSTER_KEYS)
    api_server = t.string("api_server")
    if api_server is not None:
        # issue 8: no credentials or stray characters in a URL that lands in kubeconfigs.
        reason = urls.url_problem(api_server, https_only=True) or _https_url_host(api_server)[1]
        if reason:
            t.problem("api_server", reason)
            api_server = None
    path = t.path("kubeconfig_path")
    _warn_kubeconfig_path(t, "kubeconfig_path", path)  # issue 8
    return api_server, path


def _warn_kubeconfig_path(t: _Table, key: str, path: Path | None) -> None:
    # issue 8: a relative kubeconfig path, or one outside the home directory, is a warning.
    text = t.data.get(key)
    home = t.report.environ.get("HOME")
    if path is not None and isinstance(text, str):
        if warning := kubeconfig.path_warning(f"{t.file}: {t.key_path(key)}", text, path, home):
            t.report.warnings.append(warning)


def _parse_profile_argocd(argocd: _Table, draft: _ProfileDraft) -> None:
    argocd.allow(_PROFILE_ARGOCD_KEYS)
    draft.target_name = argocd.string("target_name", required=True)
    draft.server = argocd.string("server", required=True)
    if draft.server is not None and (reason := _host_port_problem(draft.server)):
        argocd.problem("server", reason)
    draft.login_args = argocd.string("login_args", required=True, allow_empty=True)
    draft.auto_port_forward = argocd.boolean("auto_port_forward", required=True)
    draft.cluster_context = argocd.string("cluster_context", required=True)
    draft.cluster_name = argocd.string("cluster_name", required=True)


def _parse_inventory(report: _Report, path: Path) -> _InventoryDraft:
    draft = _InventoryDraft(file=report.rel(path))
    top = _read_toml(report, path)
    if top is None:
        return draft
    top.allow(("vms",))
    vms = top.table("vms", required=True)
    if vms is None:
        return draft
    draft.parsed = True
    if not vms.data:
        top.problem("vms", "must define at least one VM")
    for alias in vms.data:
        draft.aliases.append(alias)
        if not _ALIAS.fullmatch(alias):
            vms.problem(alias, "VM alias must be letters, digits, '.', '_' or '-'")
        table = vms.table(alias, required=True)
        if table is not None:
            vm = _parse_vm(alias, table)
            if vm is not None:
                draft.vms[alias] = vm
    _check_duplicate_endpoints(vms, draft.vms)
    return draft


def _parse_vm(alias: str, t: _Table) -> Vm | None:
    start = len(t.report.problems)
    t.allow(_VM_KEYS)
    host = t.string("ansible_host", required=True)
    if host is not None and not is_host(host):
        t.problem("ansible_host", f"must be an IP address or DNS name, got {host!r}")
    user = t.string("ansible_user", required=True)
    if user is not None and not _USER.fullmatch(user):  # issue 8: it lands in ssh_config
        t.problem(
            "ansible_user", f"must be a login name (letters, digits, '.', '_', '-'), got {user!r}"
        )
    become = t.string("ansible_become_user", required=True)
    if become is not None and become != "root":
        # The deploy writes /usr/local/bin, /etc/rancher and systemd units: only root can.
        t.problem(
            "ansible_become_user",
            f"must be root (the deploy installs system files), got {become!r}",
        )
    vm_name = t.string("proxmox_vm_name", required=True)
    if vm_name is not None and not is_dns_name(vm_name):  # issue 8: Proxmox takes DNS names
        t.problem("proxmox_vm_name", f"must be a DNS name as Proxmox requires, got {vm_name!r}")
    workloads = t.string_list("workloads", required=True)
    for index, workload in enumerate(workloads or []):
        if workload not in WORKLOADS:
            t.problem(f"workloads[{index}]", f"must be one of {', '.join(WORKLOADS)}")
        elif workloads and workloads.index(workload) != index:
            t.problem(f"workloads[{index}]", f"{workload!r} is listed twice")
    port = t.integer("ssh_port", minimum=1, maximum=65535)
    key = t.path("ssh_key")
    known_hosts = t.path("ssh_known_hosts_file")
    if len(t.report.problems) > start:
        return None
    return Vm(
        alias=alias,
        ansible_host=_need(host),
        ansible_user=_need(user),
        ansible_become_user=_need(become),
        proxmox_vm_name=_need(vm_name),
        workloads=tuple(_need(workloads)),
        ssh_port=port,
        ssh_key=key,
        ssh_known_hosts_file=known_hosts,
    )


def _check_duplicate_endpoints(vms: _Table, parsed: dict[str, Vm]) -> None:
    # Two aliases for one SSH endpoint would make pyinfra configure the same machine twice.
    seen: dict[tuple[str, int], str] = {}
    for alias, vm in parsed.items():
        port = vm.ssh_port if vm.ssh_port is not None else DEFAULT_SSH_PORT
        endpoint = (_host_key(vm.ansible_host), port)
        if endpoint in seen:
            vms.problem(
                f"{alias}.ansible_host",
                f"same ansible_host and ssh_port ({vm.ansible_host}:{port}) as vms.{seen[endpoint]}",
            )
        else:
            seen[endpoint] = alias


def _parse_k3s_vars(report: _Report, path: Path) -> _K3sDraft:
    draft = _K3sDraft(file=report.rel(path))
    t = _read_yaml(report, path)
    if t is None:
        return draft
    t.allow(_K3S_KEYS)
    draft.version = t.string("k3s_version", required=True)
    if draft.version is not None and not _K3S_VERSION.fullmatch(draft.version):
        t.problem("k3s_version", f'must look like "v1.34.3+k3s1", got {draft.version!r}')
    draft.install_source = t.string("k3s_install_source") or "release"
    if draft.install_source not in INSTALL_SOURCES:
        t.problem("k3s_install_source", f"must be one of {', '.join(INSTALL_SOURCES)}")
    draft.release_url = t.string("k3s_release_url") or DEFAULT_RELEASE_URL
    draft.airgap_dir = t.path("k3s_airgap_dir")
    if draft.install_source == "airgap" and "k3s_airgap_dir" not in t.data:
        t.problem("k3s_airgap_dir", "required when k3s_install_source is airgap")
    # A pin of the binary's own digest: the checksum file alone comes from the same source.
    draft.sha256 = t.string("k3s_sha256")
    if draft.sha256 is not None and not _SHA256.fullmatch(draft.sha256):
        t.problem("k3s_sha256", "must be 64 lowercase hex digits (a sha256 digest)")
    # issue 8: no credentials; plain http only with the binary's digest pinned.
    if reason := urls.url_problem(draft.release_url, pinned=draft.sha256 is not None):
        t.problem("k3s_release_url", reason)
    config = t.table("k3s_config")
    if config is not None:
        draft.config = dict(config.data)
        start = len(report.problems)
        _check_k3s_config(config, draft)
        draft.sans_known = len(report.problems) == start
    else:
        draft.sans_known = "k3s_config" not in t.data
    return draft


def _check_k3s_config(t: _Table, draft: _K3sDraft) -> None:
    """Check the k3s flags whose mistakes break the bootstrap or leak a secret; other flags are
    free-form. issue 8: keys are first normalised as k3s reads them (``token+``, ``t``,
    ``--token`` are all the token flag), values refused where k3s cannot take them."""
    flags = k3s_config.normalise(t.data)
    for key, problem in flags.problems:
        t.problem(key, problem)
    if mode_problem := k3s_config.write_kubeconfig_mode_problem(flags):
        t.problem(flags.written_as["write-kubeconfig-mode"], mode_problem)
    elif (mode := flags.values.get("write-kubeconfig-mode")) and int(mode, 8) & 0o077:
        t.report.warnings.append(
            f"k3s_config.write-kubeconfig-mode {mode} lets other users on the VM read the "
            "cluster-admin kubeconfig; the deploy reads it as root and does not need that"
        )
    # The rest reads the flags by the names k3s gives them.
    n = _Table(t.report, t.file, flags.values, t.prefix)
    draft.sans = _hosts(n, "tls-san", is_host, "an IP address or DNS name")
    for key in ("node-ip", "node-external-ip"):
        draft.node_addresses += _hosts(n, key, is_ip_address, "an IP address")
    advertise = n.string("advertise-address")
    if advertise is not None:
        if is_ip_address(advertise):
            draft.node_addresses.append(advertise)
        else:
            n.problem("advertise-address", f"must be an IP address, got {advertise!r}")
    draft.disable = _flag_list(n, "disable")


def _flag_list(t: _Table, key: str) -> list[str]:
    """A k3s slice flag: a list of strings, or one string with comma-separated values."""
    if key not in t.data:
        return []
    value = t.data[key]
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, list):
        items = t.string_list(key)
        return [item.strip() for item in items] if items is not None else []
    t.problem(key, f"must be a string or a list of strings, got {_describe(value)}")
    return []


def _hosts(t: _Table, key: str, valid: Callable[[str], bool], what: str) -> list[str]:
    good: list[str] = []
    for index, item in enumerate(_flag_list(t, key)):
        if valid(item):
            good.append(item)
        else:
            t.problem(f"{key}[{index}]", f"must be {what}, got {item!r}")
    return good


def _parse_argocd_vars(report: _Report, path: Path) -> _ArgoDraft:
    draft = _ArgoDraft(file=report.rel(path))
    t = _read_yaml(report, path)
    if t is None:
        return draft
    t.allow(_ARGOCD_KEYS)
    draft.ingress_enabled = t.boolean("argocd_ingress_enabled", required=True)
    draft.ingress_class_name = _k8s_name(t, "argocd_ingress_class_name", required=True)
    draft.ingress_host = t.string("argocd_ingress_host", required=True)
    if draft.ingress_host is not None:
        # One name the UI and API answer at: no IP address, no wildcard.
        name = draft.ingress_host
        if is_ip_address(name) or not is_dns_name(name):
            t.problem("argocd_ingress_host", f"must be a DNS name, got {draft.ingress_host!r}")
    draft.ingress_service_port = t.integer(
        "argocd_ingress_service_port", required=True, maximum=65535
    )
    draft.server_insecure = t.boolean("argocd_server_insecure", required=True)
    draft.ingress_tls_enabled = t.boolean("argocd_ingress_tls_enabled", required=True)
    draft.ingress_tls_secret_name = _k8s_name(t, "argocd_ingress_tls_secret_name")
    draft.namespace = _k8s_name(t, "argocd_namespace")
    if draft.namespace is not None and draft.namespace != "argocd":
        # The official manifest's ClusterRoleBindings name the service accounts in "argocd".
        t.problem("argocd_namespace", "must be argocd: the official manifest binds its roles there")
        draft.namespace = None
    draft.version = t.string("argocd_version") or DEFAULT_ARGOCD_VERSION
    if draft.version == "stable":
        report.warnings.append(STABLE_WARNING)
    elif not _ARGOCD_VERSION.fullmatch(draft.version):
        t.problem(
            "argocd_version", f'must look like "v3.5.1" or be "stable", got {draft.version!r}'
        )
    url = t.string("argocd_manifest_url") or DEFAULT_MANIFEST_URL
    draft.manifest_url = url.replace("{version}", draft.version)
    draft.manifest_file = t.path("argocd_manifest_file")
    if draft.manifest_file is not None and "argocd_manifest_url" in t.data:
        report.warnings.append("argocd_manifest_url is ignored: argocd_manifest_file is set")
    draft.manifest_sha256 = t.string("argocd_manifest_sha256")
    if draft.manifest_sha256 is not None and not _SHA256.fullmatch(draft.manifest_sha256):
        t.problem("argocd_manifest_sha256", "must be 64 lowercase hex digits (a sha256 digest)")
        draft.manifest_sha256 = None
    _check_manifest_source(t, draft, url)  # issue 8
    draft.rollout_timeout = t.integer("argocd_rollout_timeout", minimum=1)
    draft.allow_downgrade = t.boolean("argocd_allow_downgrade")
    return draft


def _check_manifest_source(t: _Table, draft: _ArgoDraft, url: str) -> None:
    """issue 8: the manifest URL without credentials (plain http only with a pinned sha256);
    a manifest file that cannot be read or parsed, or does not match its pin, is reported
    at argocd_manifest_file as ``'<manifest file>': problem``."""
    pinned = draft.manifest_sha256 is not None or draft.manifest_file is not None
    # The version is checked on its own; a valid one is URL-safe.
    if reason := urls.url_problem(url.replace("{version}", "v0.0.0"), pinned=pinned):
        t.problem("argocd_manifest_url", reason)
    path = draft.manifest_file
    if path is not None and (
        problem := argocd_manifest.manifest_problem(path, draft.manifest_sha256)
    ):
        t.problem("argocd_manifest_file", f"{t.report.rel(path)!r}: {problem}")


def _k8s_name(t: _Table, key: str, required: bool = False) -> str | None:
    value = t.string(key, required=required)
    if value is not None and not _K8S_NAME.fullmatch(value):
        t.problem(key, f"must be a Kubernetes name (lowercase letters, digits, '-'), got {value!r}")
        return None
    return value


# --------------------------------------------------------------------------- environment


def _apply_environment(report: _Report, draft: _ProfileDraft) -> None:
    """Operator overrides; each one replaces the file value and is validated like it."""
    env = report.environ
    cwd = Path.cwd()
    # Like kubectl, a KUBECONFIG list is searched in order; we merge into its first entry.
    entries = [entry for entry in env.get("KUBECONFIG", "").split(os.pathsep) if entry]
    if entries:
        draft.kubeconfig = report.resolve(entries[0], cwd)
        _warn_environment_path(report, "KUBECONFIG", entries[0], draft.kubeconfig)  # issue 8
    if env.get("KUBECTX"):
        draft.argocd_context = env["KUBECTX"]
        draft.context_source = (ENVIRONMENT, "KUBECTX")
    for variable in ("ARGOCD_TARGET_NAME", "K3S_TARGET_NAME"):  # later wins: K3S_ beats ARGOCD_
        if env.get(variable):
            draft.target_name = env[variable]
            draft.target_source = (ENVIRONMENT, variable)
    if env.get("K3S_KUBECONFIG_PATH"):
        draft.k3s_kubeconfig_path = report.resolve(env["K3S_KUBECONFIG_PATH"], cwd)
        _warn_environment_path(  # issue 8
            report, "K3S_KUBECONFIG_PATH", env["K3S_KUBECONFIG_PATH"], draft.k3s_kubeconfig_path
        )


def _warn_environment_path(report: _Report, variable: str, text: str, path: Path) -> None:
    # issue 8: as _warn_kubeconfig_path, for the environment overrides.
    if warning := kubeconfig.path_warning(variable, text, path, report.environ.get("HOME")):
        report.warnings.append(warning)


# --------------------------------------------------------------------------- cross-file checks


def _cross_check(
    report: _Report,
    profile: _ProfileDraft,
    inventory: _InventoryDraft,
    k3s: _K3sDraft,
    argocd: _ArgoDraft,
) -> None:
    _check_contexts(report, profile)
    target = _check_target(report, profile, inventory)
    if target is not None and k3s.sans_known:
        _check_api_server(report, profile, k3s, target)
    # The traefik conflict only matters when an Ingress object will actually be created.
    if (
        argocd.ingress_enabled
        and argocd.ingress_class_name == "traefik"
        and "traefik" in k3s.disable
    ):
        report.add(
            argocd.file,
            "argocd_ingress_class_name",
            f'is "traefik" but {k3s.file} k3s_config.disable turns traefik off; '
            "use another ingress class or re-enable traefik",
        )


def _check_contexts(report: _Report, profile: _ProfileDraft) -> None:
    if not _check_context_names(report, profile):  # issue 8
        return
    argocd_ctx, rke2_ctx = profile.argocd_context, profile.rke2_context
    if argocd_ctx is not None and argocd_ctx == rke2_ctx:
        file, key = profile.context_source
        report.add(file, key, f"{argocd_ctx!r} is also kube.contexts.rke2_gpu; use distinct names")
    cluster_ctx = profile.cluster_context
    if cluster_ctx is None or argocd_ctx is None or rke2_ctx is None:
        return
    if cluster_ctx not in (argocd_ctx, rke2_ctx):
        report.add(
            profile.file,
            "argocd.cluster_context",
            f"{cluster_ctx!r} must be kube.contexts.rke2_gpu ({rke2_ctx!r}) "
            f"or kube.contexts.argocd ({argocd_ctx!r})",
        )


def _check_context_names(report: _Report, profile: _ProfileDraft) -> bool:
    """issue 8: context names become cluster, user and context names in the operator's
    kubeconfig: no control characters, no surrounding spaces, at most 253 characters."""
    names = {
        profile.context_source: profile.argocd_context,
        (profile.file, "kube.contexts.rke2_gpu"): profile.rke2_context,
        (profile.file, "argocd.cluster_context"): profile.cluster_context,
    }
    ok = True
    for (file, key), name in names.items():
        if name is not None and (problem := kubeconfig.name_problem(name)):
            report.add(file, key, f"{problem} (a kubeconfig context name), got {name!r}")
            ok = False
    return ok


def _check_target(report: _Report, profile: _ProfileDraft, inventory: _InventoryDraft) -> Vm | None:
    name = profile.target_name
    if name is None or not inventory.parsed:
        return None
    file, key = profile.target_source
    if name not in inventory.aliases:
        known = ", ".join(inventory.aliases) or "none"
        report.add(file, key, f"{name!r} is not a VM in {inventory.file} (VMs: {known})")
        return None
    target = inventory.vms.get(name)
    missing = [w for w in ("k3s", "argocd") if target is not None and w not in target.workloads]
    if missing:
        report.add(
            inventory.file,
            f"vms.{name}.workloads",
            f"must include {' and '.join(f'{w!r}'.replace(chr(39), chr(34)) for w in missing)}: "
            f"{name!r} is the Argo CD target ({key})",
        )
    # The workload cluster has one context name in profile.toml, so one rke2 VM.
    rke2 = [vm.alias for vm in inventory.vms.values() if "rke2" in vm.workloads]
    if len(rke2) > 1:
        report.add(
            inventory.file,
            f"vms.{rke2[1]}.workloads",
            f"'rke2' is on {', '.join(rke2)}; a site has one rke2 VM (context rke2_gpu)",
        )
    return target


def _check_api_server(report: _Report, profile: _ProfileDraft, k3s: _K3sDraft, target: Vm) -> None:
    url = profile.k3s_api_server
    if url is None:
        return  # The default points at the target's ansible_host, which k3s always certifies.
    host, _ = _https_url_host(url)
    if host is None:
        return  # Already reported while reading the profile.
    allowed = [*k3s.sans, target.ansible_host, *k3s.node_addresses]
    if _host_key(host) not in {_host_key(name) for name in allowed}:
        report.add(
            profile.file,
            "k3s.api_server",
            f"host {host!r} is not in the k3s certificate: add it to k3s_config.tls-san in "
            f"{k3s.file} (certified now: {', '.join(allowed)})",
        )


# --------------------------------------------------------------------------- assembly


def _need(value: T | None) -> T:
    # Only called once validation found no problem, so every required value is present.
    if value is None:
        raise AssertionError("a validated site value is missing")
    return value


def _build_site(
    name: str,
    site_dir: Path,
    report: _Report,
    profile: _ProfileDraft,
    inventory: _InventoryDraft,
    k3s: _K3sDraft,
    argocd: _ArgoDraft,
) -> Site:
    target = inventory.vms[_need(profile.target_name)]
    home = report.resolve("~/.kube", report.repo_root)
    rke2_vm = next((vm for vm in inventory.vms.values() if "rke2" in vm.workloads), None)
    rke2_api = profile.rke2_api_server
    if rke2_api is None and rke2_vm is not None:
        rke2_api = f"https://{_url_host(rke2_vm.ansible_host)}:6443"
    return Site(
        name=name,
        root=site_dir,
        repo_root=report.repo_root,
        kubeconfig=_need(profile.kubeconfig),
        argocd_context=_need(profile.argocd_context),
        rke2_context=_need(profile.rke2_context),
        vms=dict(inventory.vms),
        k3s=K3s(
            version=_need(k3s.version),
            install_source=_need(k3s.install_source),
            release_url=_need(k3s.release_url),
            airgap_dir=k3s.airgap_dir,
            config=k3s.config,
            api_server=profile.k3s_api_server or f"https://{_url_host(target.ansible_host)}:6443",
            kubeconfig_path=profile.k3s_kubeconfig_path or home / f"{name}.yml",
            sha256=k3s.sha256,
        ),
        rke2=Rke2(
            api_server=rke2_api,
            kubeconfig_path=profile.rke2_kubeconfig_path or home / f"{name}-rke2.yml",
        ),
        argocd=_build_argocd(profile, argocd),
        warnings=tuple(report.warnings),
    )


def _build_argocd(profile: _ProfileDraft, argocd: _ArgoDraft) -> ArgoCD:
    return ArgoCD(
        target_name=_need(profile.target_name),
        server=_need(profile.server),
        login_args=_need(profile.login_args),
        auto_port_forward=_need(profile.auto_port_forward),
        cluster_context=_need(profile.cluster_context),
        cluster_name=_need(profile.cluster_name),
        namespace=argocd.namespace or "argocd",
        version=_need(argocd.version),
        manifest_url=_need(argocd.manifest_url),
        manifest_file=argocd.manifest_file,
        manifest_sha256=argocd.manifest_sha256,
        rollout_timeout=argocd.rollout_timeout or 180,
        allow_downgrade=bool(argocd.allow_downgrade),
        ingress_enabled=_need(argocd.ingress_enabled),
        ingress_class_name=_need(argocd.ingress_class_name),
        ingress_host=_need(argocd.ingress_host),
        ingress_service_port=_need(argocd.ingress_service_port),
        ingress_tls_enabled=_need(argocd.ingress_tls_enabled),
        ingress_tls_secret_name=argocd.ingress_tls_secret_name or "argocd-server-tls",
        server_insecure=_need(argocd.server_insecure),
    )


def _unknown_site(name: str, sites: Path) -> SiteError:
    known = sorted(p.name for p in sites.iterdir() if p.is_dir()) if sites.is_dir() else []
    message = (
        f"site directory not found: {sites / name} (known sites: {', '.join(known) or 'none'})"
    )
    return SiteError([Problem(f"sites/{name}", "-", message)])


def load_site(
    name: str, repo_root: Path | None = None, environ: Mapping[str, str] | None = None
) -> Site:
    """Load, validate and resolve ``sites/<name>/``; raise SiteError listing every problem.

    ``environ`` (default ``os.environ``) supplies operator overrides: KUBECONFIG, KUBECTX,
    K3S_TARGET_NAME / ARGOCD_TARGET_NAME (K3S_ wins) and K3S_KUBECONFIG_PATH.
    """
    root = (repo_root if repo_root is not None else _DEFAULT_REPO_ROOT).absolute()
    report = _Report(root, os.environ if environ is None else environ)
    if not _SITE_NAME.fullmatch(name):
        message = "site name must be letters, digits, '.', '_' or '-' (no path separators)"
        raise SiteError([Problem(f"sites/{name}", "-", message)])
    # TIROSH_SITES_DIR reads the site files from elsewhere (tests of edited copies); relative
    # paths inside them still resolve against the repository.
    sites_dir = Path(report.environ.get("TIROSH_SITES_DIR") or root / "sites")
    site_dir = sites_dir / name
    if not site_dir.is_dir():
        raise _unknown_site(name, sites_dir)
    profile = _parse_profile(report, site_dir / PROFILE)
    inventory = _parse_inventory(report, site_dir / INVENTORY)
    k3s = _parse_k3s_vars(report, site_dir / K3S_VARS)
    argocd = _parse_argocd_vars(report, site_dir / ARGOCD_VARS)
    _apply_environment(report, profile)
    _cross_check(report, profile, inventory, k3s, argocd)
    if report.problems:
        raise SiteError(report.problems)
    site = _build_site(name, site_dir, report, profile, inventory, k3s, argocd)
    _check_kubeconfig_files(report, site)
    if report.problems:
        raise SiteError(report.problems)
    return dataclasses.replace(site, warnings=tuple(report.warnings))


def _check_kubeconfig_files(report: _Report, site: Site) -> None:
    """The merge target and the per-site files must be different files.

    Merging into a per-site file, or writing a per-site file over the merge target, would
    replace the operator's other contexts without a backup.
    """
    files = {
        "kube.kubeconfig": site.kubeconfig,
        "k3s.kubeconfig_path": site.k3s.kubeconfig_path,
        "rke2.kubeconfig_path": site.rke2.kubeconfig_path,
    }
    seen: dict[Path, str] = {}
    for key, path in files.items():
        real = Path(os.path.realpath(path))
        if real in seen:
            report.add(
                report.rel(site.root / PROFILE),
                key,
                f"is the same file as {seen[real]} ({path}); each kubeconfig needs its own file "
                "(the first file of KUBECONFIG and K3S_KUBECONFIG_PATH count: KUBECONFIG must "
                "start with the merge target, as `make k3s/kubeconfig/export` prints it)",
            )
        seen.setdefault(real, key)


# --------------------------------------------------------------------------- CLI


def load_or_report(
    name: str, repo_root: Path | None = None, environ: Mapping[str, str] | None = None
) -> Site | None:
    """For commands: the site, or None after printing its problems to stderr (warnings too)."""
    try:
        site = load_site(name, repo_root, environ)
    except SiteError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None
    for warning in site.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return site


def to_dict(site: Site) -> dict[str, Any]:
    """JSON-ready summary of a resolved site (site files hold no secrets)."""
    return {
        "site": site.name,
        "kubeconfig": str(site.kubeconfig),
        "contexts": {"argocd": site.argocd_context, "rke2_gpu": site.rke2_context},
        "target": site.argocd.target_name,
        "vms": {
            alias: {
                "host": vm.ansible_host,
                "user": vm.ansible_user,
                "become_user": vm.ansible_become_user,
                "port": vm.ssh_port,
                "proxmox_vm_name": vm.proxmox_vm_name,
                "workloads": list(vm.workloads),
            }
            for alias, vm in site.vms.items()
        },
        "k3s": {
            "version": site.k3s.version,
            "install_source": site.k3s.install_source,
            "airgap_dir": str(site.k3s.airgap_dir) if site.k3s.airgap_dir else None,
            "api_server": site.k3s.api_server,
            "kubeconfig_path": str(site.k3s.kubeconfig_path),
        },
        "rke2": {
            "api_server": site.rke2.api_server,
            "kubeconfig_path": str(site.rke2.kubeconfig_path),
        },
        "argocd": {
            key: str(value) if isinstance(value, Path) else value
            for key, value in vars(site.argocd).items()
        },
        "warnings": list(site.warnings),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tirosh.site", description="Validate or show a site under sites/."
    )
    parser.add_argument("--repo-root", type=Path, default=None, help="directory holding sites/")
    commands = parser.add_subparsers(dest="command", required=True)
    for command, text in (
        ("validate", "check every file of the site"),
        ("render", "print the resolved site as JSON"),
        ("export", "print `export KUBECONFIG=...` for the site's k3s kubeconfig"),
        ("require-rke2", "fail with a clear message when the site has no rke2 VM"),
        ("get", "print one resolved value, e.g. argocd.rollout_timeout or argocd_context"),
    ):
        sub = commands.add_parser(command, help=text)
        sub.add_argument("site")
        if command == "get":
            sub.add_argument("key")
    args = parser.parse_args(argv)
    site = load_or_report(args.site, args.repo_root)
    if site is None:
        return 1
    if args.command == "validate":
        print(f"site {site.name}: ok ({len(site.vms)} vms)")
    elif args.command == "export":
        return _print_export(site)  # issue 8
    elif args.command == "get":
        value: Any = site
        for part in args.key.split("."):
            if not hasattr(value, part):
                print(f"site {site.name}: no value {args.key!r}", file=sys.stderr)
                return 2
            value = getattr(value, part)
        print(value)
    elif args.command == "require-rke2":
        if site.rke2_vm is None:
            print(
                f"site {site.name}: no VM in sites/{site.name}/inventory.toml has the rke2 "
                "workload, so there is no rke2 kubeconfig to merge",
                file=sys.stderr,
            )
            return 1
    else:
        print(json.dumps(to_dict(site), indent=2))
    return 0


def _print_export(site: Site) -> int:
    """issue 8: ``export KUBECONFIG=<first>:<site files>``. The first entry is the file kubectl
    writes and this loader merges into (the operator's KUBECONFIG list, else kube.kubeconfig),
    so later commands in the same shell still validate; the site's files add its contexts."""
    current = [e for e in os.environ.get("KUBECONFIG", "").split(os.pathsep) if e]
    first = [Path(e) for e in current] or [site.kubeconfig]
    files = [site.k3s.kubeconfig_path]
    if site.rke2_vm is not None:
        files.append(site.rke2.kubeconfig_path)
    try:
        value = kubeconfig.export_list(first, files)
    except ValueError as error:
        print(f"site {site.name}: {error}", file=sys.stderr)
        return 1
    print(f"export KUBECONFIG={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
