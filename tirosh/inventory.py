"""Turn a site's inventory.toml into pyinfra inventory groups (plain data, no connection)."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Mapping
from typing import Any

from tirosh.redact import Redacted
from tirosh.site import Site, SiteError, Vm, load_site

Host = tuple[str, dict[str, Any]]
WORKLOADS = ("k3s", "argocd", "rke2")


def host_data(site: Site, vm: Vm, password: str | None = None) -> dict[str, Any]:
    """pyinfra host data for one VM: how to connect, how to become root, and which site it is."""
    data: dict[str, Any] = {
        "ssh_hostname": vm.ansible_host,
        "ssh_user": vm.ansible_user,
        "_sudo": True,
        "site": site.name,
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
    """One group per workload (`k3s`, `argocd`, `rke2`), hosts named by their inventory alias."""
    result: dict[str, list[Host]] = {workload: [] for workload in WORKLOADS}
    for vm in site.vms.values():
        for workload in vm.workloads:
            result[workload].append((vm.alias, host_data(site, vm, password)))
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
