"""Turn a site's inventory.toml into pyinfra inventory groups (plain data, no connection).

The site is loaded and validated once, here, and every host carries it in its data
(``site_model``): the deploys read their settings from there instead of the files. Host roles
are the groups: ``management`` (the VM that runs k3s and Argo CD) and ``rke2`` (the workload
cluster's VM); the deploys test membership and ``--limit`` picks by the same names.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Mapping
from typing import Any

from tirosh.redact import Redacted
from tirosh.site import Site, SiteError, Vm, load_site

Host = tuple[str, dict[str, Any]]
MANAGEMENT = "management"
RKE2 = "rke2"


def host_data(site: Site, vm: Vm, password: str | None = None) -> dict[str, Any]:
    """pyinfra host data for one VM: how to connect, how to become root, and which site it is."""
    data: dict[str, Any] = {
        "ssh_hostname": vm.ansible_host,
        "ssh_user": vm.ansible_user,
        "_sudo": True,
        "site": site.name,
        # The validated site, shared by every host of the run (pyinfra prints it as to_dict).
        "site_model": site,
        "alias": vm.alias,
        "workloads": list(vm.workloads),
        "proxmox_vm_name": vm.proxmox_vm_name,
    }
    if vm.ansible_become_user != "root":
        data["_sudo_user"] = vm.ansible_become_user
    if vm.ssh_port is not None:
        data["ssh_port"] = vm.ssh_port
    if vm.ssh_key is not None:
        data["ssh_key"] = str(vm.ssh_key)
    if vm.ssh_known_hosts_file is not None:
        data["ssh_known_hosts_file"] = str(vm.ssh_known_hosts_file)
        data["ssh_strict_host_key_checking"] = "yes"
    if password is not None:
        # For the SSH login only (paramiko; never on a command line). No _sudo_password: pyinfra
        # sends a sudo password inside the remote command, visible in `ps` on the VM.
        # Redacted: pyinfra logs the connection arguments with %r at --debug.
        data["ssh_password"] = Redacted(password)
    return data


def groups(site: Site, password: str | None = None) -> dict[str, list[Host]]:
    """``management``: the site's target VM (K3S_TARGET_NAME picks another); ``rke2``: the
    workload cluster's VM, when the site has one. Hosts are named by their inventory alias."""
    result: dict[str, list[Host]] = {
        MANAGEMENT: [(site.target.alias, host_data(site, site.target, password))]
    }
    rke2 = site.rke2_vm
    result[RKE2] = [] if rke2 is None else [(rke2.alias, host_data(site, rke2, password))]
    return result


def load_groups(site_name: str, environ: Mapping[str, str] | None = None) -> dict[str, list[Host]]:
    """What `inventories/<site>.py` calls: validate the whole site first, or exit with problems."""
    env = os.environ if environ is None else environ
    try:
        site = load_site(site_name, environ=env)
    except SiteError as error:
        print(f"site {site_name}: invalid, nothing was changed:\n{error}", file=sys.stderr)
        raise SystemExit(1) from None
    for warning in site.warnings:
        print(f"site {site_name}: warning: {warning}", file=sys.stderr)
    password = None
    if env.get("ASK_PASS", "").lower() in ("1", "true", "yes"):
        password = getpass.getpass(f"SSH password for site {site_name}: ")
    return groups(site, password)
