"""The Proxmox VMs a site declares (``sites/<site>/vms.tfvars``) and how the PVE API is reached
(profile.toml's ``[proxmox]``). The site model reads them (``tirosh.site.vms_file``); the plan
(``tirosh.proxmox``) and the commands (``local.proxmox``) take them from ``Site.proxmox_vms``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["TOKEN_SECRET_VARIABLE", "VMS_FILE", "Declared", "ProxmoxAccess", "VmSpec"]

TOKEN_SECRET_VARIABLE: Final = "PROXMOX_TOKEN_SECRET"
VMS_FILE: Final = "vms.tfvars"


@dataclass(frozen=True)
class ProxmoxAccess:
    """profile.toml's ``[proxmox]``: where the API is and how its certificate is checked.

    ``ca_file``: the CA that signed the API certificate (PVE's ``/etc/pve/pve-root-ca.pem``);
    ``fingerprint``: the SHA-256 of the API certificate itself (``pvenode cert info``); neither:
    the system's CA store (an ACME certificate).
    """

    api_url: str
    host: str
    port: int
    node: str
    token_id: str
    ca_file: Path | None
    fingerprint: str | None
    file: str = "profile.toml"  # the profile.toml it was read from, for problems found later


@dataclass(frozen=True)
class VmSpec:
    """One declared VM of vms.tfvars, as the plan compares it with PVE."""

    where: str  # where it is in the file: vms[0], or vms.<name> in the map form
    name: str
    vm_id: int
    node: str
    template_vm_id: int
    tags: tuple[str, ...]
    cpu_cores: int
    memory_mb: int
    datastore_id: str
    disk_interface: str
    size_gb: int
    bridge: str
    username: str
    ssh_public_key_file: Path
    ipv4: str  # "dhcp" or an address with its prefix length
    gateway: str | None

    @property
    def key(self) -> str:
        """Where the VM is in the file, for ``file: key: problem`` lines."""
        return self.where


@dataclass(frozen=True)
class Declared:
    """The site's declared VMs and the connection to the PVE API (None without ``[proxmox]``)."""

    file: str
    proxmox: ProxmoxAccess | None
    vms: tuple[VmSpec, ...]
