"""The resolved site, and the declaration of every setting a site file may hold.

(Over 300 lines: every setting of every site file is declared here, once, by design.)

A setting is declared once, where the model holds it: ``setting(key, kind, ...)`` on a
dataclass field (or in a table's tuple of ``Setting`` for values that land elsewhere). From
those declarations the readers derive the keys a table allows, how each value is read and
checked, its default, and the keyword arguments the model is built from. Adding a setting to
a site file is one ``setting(...)`` line plus the code that uses it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from tirosh.access import ACCESS_FILE, Access
from tirosh.applications import APPLICATIONS_FILE, Application, GitOps, Project
from tirosh.argocd import DEFAULT_ARGOCD_VERSION, DEFAULT_MANIFEST_URL
from tirosh.clusters import CLUSTERS_FILE, WorkloadCluster
from tirosh.k3s import DEFAULT_RELEASE_URL
from tirosh.repositories import REPOSITORIES_FILE, Repository, Template
from tirosh.secrets_registry import SECRETS_FILE, RegistrySecret
from tirosh.site import values
from tirosh.vms import Declared

PROFILE: Final = "profile.toml"
INVENTORY: Final = "inventory.toml"
K3S_VARS: Final = "k3s/vars.yml"
ARGOCD_VARS: Final = "argocd/vars.yml"
# The local phase's files (optional: absent, each declares nothing).
LOCAL_PHASE_FILES: Final = (
    CLUSTERS_FILE,
    REPOSITORIES_FILE,
    SECRETS_FILE,
    APPLICATIONS_FILE,
    ACCESS_FILE,
)
ENVIRONMENT: Final = "environment"

WORKLOADS: Final = ("k3s", "argocd", "rke2")
DEFAULT_SSH_PORT: Final = 22
STABLE_WARNING: Final = "argocd_version: stable is a mutable pin"

# How a value is read: "text" is a string that may be empty; "port" an integer 1 to 65535;
# "name" a Kubernetes object name; "strings" a list of non-empty strings; "table" a mapping.
Kind = Literal["string", "text", "boolean", "integer", "port", "path", "name", "strings", "table"]
# A problem with a value of the right kind, as the message to report, or None.
Check = Callable[[Any], "str | None"]


@dataclass(frozen=True)
class Setting:
    """One key of a site file: how to read it, whether it must be there, and its default."""

    key: str
    kind: Kind
    required: bool = False
    default: Any = None
    check: Check | None = None
    name: str = ""  # the attribute it fills; the key when empty

    @property
    def attribute(self) -> str:
        return self.name or self.key


def setting(
    key: str,
    kind: Kind,
    *,
    required: bool = False,
    default: Any = None,
    check: Check | None = None,
) -> Any:
    """A dataclass field read from the site file key ``key``; see ``Setting``."""
    declared = Setting(key, kind, required, default, check)
    return field(metadata={"setting": declared})


def settings_of(cls: type, *, own: bool = False) -> tuple[Setting, ...]:
    """The declared settings of a model class in field order, each named by its field.

    ``own``: only the fields the class adds to its dataclass bases (a file of its own).
    """
    inherited = {f.name for base in cls.__mro__[1:] for f in _fields(base)} if own else set()
    return tuple(
        dataclasses.replace(f.metadata["setting"], name=f.name)
        for f in _fields(cls)
        if "setting" in f.metadata and f.name not in inherited
    )


def _fields(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    return dataclasses.fields(cls) if dataclasses.is_dataclass(cls) else ()


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True, kw_only=True)
class Vm:
    """One ``[vms.<alias>]`` table of inventory.toml."""

    alias: str
    ansible_host: str = setting("ansible_host", "string", required=True, check=values.host_problem)
    ansible_user: str = setting("ansible_user", "string", required=True, check=values.user_problem)
    ansible_become_user: str = setting(
        "ansible_become_user", "string", required=True, check=values.become_user_problem
    )
    proxmox_vm_name: str = setting(
        "proxmox_vm_name", "string", required=True, check=values.proxmox_vm_name_problem
    )
    workloads: tuple[str, ...] = setting("workloads", "strings", required=True)
    ssh_port: int | None = setting("ssh_port", "port")
    ssh_key: Path | None = setting("ssh_key", "path")
    ssh_known_hosts_file: Path | None = setting("ssh_known_hosts_file", "path")


@dataclass(frozen=True, kw_only=True)
class K3s:
    """k3s/vars.yml, with the API URL and the per-site kubeconfig of profile.toml's [k3s]."""

    version: str = setting("k3s_version", "string", required=True, check=values.k3s_version_problem)
    install_source: str = setting(
        "k3s_install_source", "string", default="release", check=values.install_source_problem
    )
    release_url: str = setting(
        "k3s_release_url", "string", default=DEFAULT_RELEASE_URL, check=values.download_url_problem
    )
    airgap_dir: Path | None = setting("k3s_airgap_dir", "path")
    # The content of /etc/rancher/k3s/config.yaml (k3s flags as keys); read by k3s_vars.py.
    config: dict[str, Any]
    api_server: str
    kubeconfig_path: Path
    # A pin of the binary's own digest: the checksum file alone comes from the same source.
    sha256: str | None = setting("k3s_sha256", "string", check=values.sha256_problem)


@dataclass(frozen=True, kw_only=True)
class Rke2:
    api_server: str | None
    kubeconfig_path: Path


@dataclass(frozen=True, kw_only=True)
class ArgoCDAccess:
    """profile.toml's ``[argocd]``: which VM runs Argo CD and how the operator reaches it.

    ``target_name`` picks the management VM. The others are for the operator-side tools
    (``local/``), not the deploy: ``local.argocd.status`` reaches the API at ``server``, through a
    port-forward when ``auto_port_forward``. The local phase logs in with ``login_args``;
    ``cluster_context`` and ``cluster_name`` declare the workload cluster when the site has no
    ``argocd/clusters.toml`` (``Site.clusters`` holds the result either way).
    """

    target_name: str = setting("target_name", "string", required=True)
    server: str = setting("server", "string", required=True, check=values.host_port_problem)
    login_args: str = setting("login_args", "text", required=True)
    auto_port_forward: bool = setting("auto_port_forward", "boolean", required=True)
    cluster_context: str = setting("cluster_context", "string", required=True)
    cluster_name: str = setting(
        "cluster_name", "string", required=True, check=values.cluster_name_problem
    )


@dataclass(frozen=True, kw_only=True)
class ArgoCD(ArgoCDAccess):
    """Argo CD's settings: profile.toml's [argocd] and the keys of argocd/vars.yml."""

    ingress_enabled: bool = setting("argocd_ingress_enabled", "boolean", required=True)
    ingress_class_name: str = setting("argocd_ingress_class_name", "name", required=True)
    # One name the UI and API answer at: no IP address, no wildcard.
    ingress_host: str = setting(
        "argocd_ingress_host", "string", required=True, check=values.dns_name_problem
    )
    ingress_service_port: int = setting("argocd_ingress_service_port", "port", required=True)
    server_insecure: bool = setting("argocd_server_insecure", "boolean", required=True)
    ingress_tls_enabled: bool = setting("argocd_ingress_tls_enabled", "boolean", required=True)
    ingress_tls_secret_name: str = setting(
        "argocd_ingress_tls_secret_name", "name", default="argocd-server-tls"
    )
    version: str = setting(
        "argocd_version",
        "string",
        default=DEFAULT_ARGOCD_VERSION,
        check=values.argocd_version_problem,
    )
    # `{version}` in the URL is replaced by the version (files.read_argocd_vars).
    manifest_url: str = setting(
        "argocd_manifest_url",
        "string",
        default=DEFAULT_MANIFEST_URL,
        check=values.manifest_url_problem,
    )
    manifest_file: Path | None = setting("argocd_manifest_file", "path")
    manifest_sha256: str | None = setting(
        "argocd_manifest_sha256", "string", check=values.sha256_problem
    )
    namespace: str = setting(
        "argocd_namespace", "name", default="argocd", check=values.argocd_namespace_problem
    )
    rollout_timeout: int = setting("argocd_rollout_timeout", "integer", default=180)
    allow_downgrade: bool = setting("argocd_allow_downgrade", "boolean", default=False)


@dataclass(frozen=True)
class Site:
    """A validated site: every file of ``sites/<name>/``, read once, with the overrides."""

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
    # The local phase's declarations (argocd/clusters.toml, repositories.toml, secrets.toml).
    clusters: tuple[WorkloadCluster, ...] = ()
    repositories: tuple[Repository, ...] = ()
    templates: tuple[Template, ...] = ()
    secrets: tuple[RegistrySecret, ...] = ()
    # argocd/applications.toml: AppProjects, Applications, the [gitops] settings.
    projects: tuple[Project, ...] = ()
    applications: tuple[Application, ...] = ()
    gitops: GitOps = field(default_factory=GitOps)
    # vms.tfvars and [proxmox]: the site's Proxmox VMs (None until the loader has read them).
    proxmox_vms: Declared | None = None
    # argocd/access.toml: accounts, RBAC, SSO, admin (tirosh.access).
    access: Access = field(default_factory=Access)

    @property
    def target(self) -> Vm:
        """The VM that runs k3s and Argo CD."""
        return self.vms[self.argocd.target_name]

    @property
    def rke2_vm(self) -> Vm | None:
        """The first VM carrying the rke2 workload, if the site has one."""
        return next((vm for vm in self.vms.values() if "rke2" in vm.workloads), None)

    def to_json(self) -> dict[str, Any]:
        """What pyinfra prints for the site in host data (``debug-inventory``)."""
        return to_dict(self)


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
        "clusters": [
            {
                "name": c.name,
                "context": c.context,
                "server": c.server,
                "namespaces": list(c.namespaces),
            }
            for c in site.clusters
        ],
        "repositories": [{"name": r.name, "url": r.url, "type": r.type} for r in site.repositories],
        "credential_templates": [t.url for t in site.templates],
        "secrets": [f"{s.namespace}/{s.name}" for s in site.secrets],
        "projects": [p.name for p in site.projects],
        "applications": [a.name for a in site.applications],
        "access": {
            "admin_enabled": site.access.admin_enabled,
            "accounts": [a.name for a in site.access.accounts],
            "roles": [r.subject for r in site.access.roles],
            "sso": site.access.sso.issuer if site.access.sso else None,
        },
        "warnings": list(site.warnings),
    }
