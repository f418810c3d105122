"""The plan of the site's VMs against what PVE reports: create, update field by field, unchanged.

(Over 300 lines: every refusal PVE would give is decided here, before anything is sent.)

Pure: ``plan`` takes the declared VMs and a ``Cluster`` (what ``local.proxmox`` read from the
API) and decides every step before anything is sent. Refused, with the reason, so that nothing
changes: a ``vm_id`` that PVE holds under another name, a name PVE holds under another id, a
node that does not exist or is offline, a template that is missing or not a template, a disk
shrink (PVE cannot shrink disks), a locked VM (a backup, a snapshot or a migration holds it),
lost quorum, and a change that only takes effect after a restart of a running VM (cores,
memory, bridge, cloud-init) unless the operator allowed the restart. Deleting a VM is never
planned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from tirosh.proxmox import config as pve
from tirosh.vms import VmSpec

__all__ = ["Change", "Cluster", "Guest", "Plan", "VmPlan", "plan"]

RESTART_HINT: Final = (
    "RESTART=true (make) / --restart shuts it down (bounded) and starts it again; "
    "or stop the VM yourself and apply"
)


@dataclass(frozen=True)
class Guest:
    """One VM of ``/cluster/resources``."""

    vmid: int
    name: str
    node: str
    status: str
    template: bool = False
    lock: str | None = None


@dataclass(frozen=True)
class Cluster:
    """What the plan needs from PVE, read before deciding anything."""

    quorate: bool
    nodes: Mapping[str, bool]  # node -> online
    guests: tuple[Guest, ...]
    # node -> storages that take VM images there (read for the declared nodes only)
    storages: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # vmid -> config, for the declared VMs that exist and the templates they clone
    configs: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    # vmid -> {key: value} of pending changes (applied by the next start)
    pending: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)

    def guest(self, vmid: int) -> Guest | None:
        return next((g for g in self.guests if g.vmid == vmid), None)


@dataclass(frozen=True)
class Change:
    """One field that changes: shown as ``label: old → new``."""

    label: str
    old: str
    new: str
    restart: bool = False  # takes effect only after a restart of the running VM

    def __str__(self) -> str:
        after = " (after a restart)" if self.restart else ""
        return f"{self.label}: {self.old} → {self.new}{after}"


@dataclass
class VmPlan:
    spec: VmSpec
    action: str = "unchanged"  # create, update, unchanged
    changes: list[Change] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    config: dict[str, str] = field(default_factory=dict)  # keys to set, as the API takes them
    grow_to: int | None = None  # bytes the disk grows to
    restart: bool = False  # shut down and start again (the operator allowed it)
    start: bool = False  # start it (created, or stopped)

    @property
    def title(self) -> str:
        s = self.spec
        return f"vm {s.name} ({s.vm_id} on {s.node})"


@dataclass
class Plan:
    vms: list[VmPlan]
    refusals: list[str] = field(default_factory=list)  # about the whole cluster

    @property
    def refused(self) -> bool:
        return bool(self.refusals) or any(v.refusals for v in self.vms)

    @property
    def changing(self) -> list[VmPlan]:
        return [v for v in self.vms if v.action != "unchanged"]

    def lines(self) -> list[str]:
        """The plan as the operator reads it."""
        out = []
        for vm in self.vms:
            head = f"{vm.title}: {vm.action}"
            out.append(head + (" (refused)" if vm.refusals else ""))
            out.extend(f"  {change}" for change in vm.changes)
            if vm.restart:
                out.append("  restart: shut down, then start (RESTART allowed)")
        out.extend(f"refused: {reason}" for reason in self.refusals)
        for vm in self.vms:
            out.extend(f"refused: {vm.title}: {reason}" for reason in vm.refusals)
        counts = {
            a: sum(v.action == a for v in self.vms) for a in ("create", "update", "unchanged")
        }
        summary = ", ".join(
            f"{n} to {a}" if a != "unchanged" else f"{n} unchanged" for a, n in counts.items()
        )
        out.append(f"plan: {summary}" + ("; refused, nothing will change" if self.refused else ""))
        return out


def plan(
    specs: tuple[VmSpec, ...] | list[VmSpec],
    keys: Mapping[str, str],
    cluster: Cluster,
    allow_restart: bool = False,
) -> Plan:
    """Decide every VM's steps.

    + specs: the declared VMs
    + keys: VM name -> its cloud-init public key(s), read from ssh_public_key_file
    + cluster: what PVE reported
    + allow_restart: the operator's consent to restart a running VM for a change that needs it
    """
    vms = [_plan_vm(spec, keys[spec.name], cluster, allow_restart) for spec in specs]
    result = Plan(vms)
    if not cluster.quorate and result.changing:
        result.refusals.append(
            "the cluster has no quorum: PVE refuses every change until it is back "
            "(pvecm status on a node)"
        )
    return result


def _plan_vm(spec: VmSpec, key: str, cluster: Cluster, allow_restart: bool) -> VmPlan:
    vm = VmPlan(spec)
    if spec.node not in cluster.nodes:
        known = ", ".join(sorted(cluster.nodes)) or "none"
        vm.refusals.append(f"node {spec.node!r} does not exist (nodes: {known})")
        return vm
    if not cluster.nodes[spec.node]:
        vm.refusals.append(f"node {spec.node!r} is offline")
        return vm
    found = cluster.guest(spec.vm_id)
    same_name = [g for g in cluster.guests if g.name == spec.name and g.vmid != spec.vm_id]
    if found is not None and found.name != spec.name:
        vm.refusals.append(
            f"vm_id {spec.vm_id} is PVE's VM {found.name!r} on node {found.node}, not "
            f"{spec.name!r}: choose a free vm_id (nothing is renamed or replaced)"
        )
        return vm
    if same_name:
        other = same_name[0]
        vm.refusals.append(
            f"PVE already has a VM named {spec.name!r} with id {other.vmid} on {other.node}: "
            f"declare vm_id = {other.vmid}, or rename one of them"
        )
        return vm
    if found is None:
        _plan_create(vm, key, cluster)
    else:
        _plan_update(vm, found, key, cluster, allow_restart)
    return vm


def _plan_create(vm: VmPlan, key: str, cluster: Cluster) -> None:
    spec = vm.spec
    vm.action = "create"
    template = cluster.guest(spec.template_vm_id)
    if template is None or not template.template:
        what = "does not exist" if template is None else f"is {template.name!r}, not a template"
        vm.refusals.append(f"clone.vm_id {spec.template_vm_id} {what}")
        return
    if template.node != spec.node:
        vm.refusals.append(
            f"template {spec.template_vm_id} is on node {template.node}, not {spec.node}: "
            "declare node_name, or copy the template there"
        )
        return
    if template.lock:
        vm.refusals.append(f"template {spec.template_vm_id} is locked ({template.lock})")
    stores = cluster.storages.get(spec.node, frozenset())
    if spec.datastore_id not in stores:
        vm.refusals.append(
            f"datastore {spec.datastore_id!r} does not exist on node {spec.node} or holds no "
            f"VM images (image storages: {', '.join(sorted(stores)) or 'none'})"
        )
    tconfig = cluster.configs.get(spec.template_vm_id, {})
    if not pve.has_cloudinit_drive(tconfig):
        vm.refusals.append(
            f"template {spec.template_vm_id} has no cloud-init drive: the user, key and "
            "address would be ignored (qm set ID --ide2 STORAGE:cloudinit on the template)"
        )
    if "net0" not in tconfig:
        vm.refusals.append(f"template {spec.template_vm_id} has no network device net0")
    tdisk = pve.disk(tconfig, spec.disk_interface)
    wanted = spec.size_gb * pve.GIB
    if tdisk is None or tdisk[1] is None:
        vm.refusals.append(
            f"template {spec.template_vm_id} has no disk {spec.disk_interface} of known size"
        )
    elif tdisk[1] > wanted:
        vm.refusals.append(
            f"disk {spec.disk_interface}: the template's is {pve.human_size(tdisk[1])}, more "
            f"than size_gb = {spec.size_gb}: PVE cannot shrink a disk"
        )
    vm.changes.append(
        Change("clone", f"template {spec.template_vm_id}", f"full clone on {spec.datastore_id}")
    )
    wanted_config = pve.desired(spec, key)
    for label, _name, old, new in _fields(tconfig, spec, key):
        if old != new:  # what the clone does not already have from the template
            vm.changes.append(Change(label, old or "-", new))
    vm.config = wanted_config
    if "net0" in tconfig:
        vm.config["net0"] = pve.with_bridge(str(tconfig["net0"]), spec.bridge)
    if tdisk is not None and tdisk[1] is not None and tdisk[1] < wanted:
        vm.grow_to = wanted
        vm.changes.append(
            Change(f"disk {spec.disk_interface}", pve.human_size(tdisk[1]), pve.human_size(wanted))
        )
    vm.start = True
    vm.changes.append(Change("power", "-", "running"))


def _fields(config: Mapping[str, Any], spec: VmSpec, key: str) -> list[tuple[str, str, str, str]]:
    """(label, config key, current, wanted) of every field the site sets, as shown."""
    return [
        ("cores", "cores", str(pve.cores(config)), str(spec.cpu_cores)),
        ("memory", "memory", f"{pve.memory_mb(config)} MiB", f"{spec.memory_mb} MiB"),
        ("tags", "tags", ";".join(pve.tags(config.get("tags"))) or "-", ";".join(spec.tags) or "-"),
        ("bridge", "net0", pve.bridge(config) or "-", spec.bridge),
        ("guest agent", "agent", "on" if pve.agent_enabled(config) else "off", "on"),
        ("cloud-init user", "ciuser", str(config.get("ciuser") or "-"), spec.username),
        (
            "cloud-init key",
            "sshkeys",
            _key_label(pve.sshkeys(config.get("sshkeys"))),
            _key_label(key),
        ),
        ("cloud-init ipv4", "ipconfig0", str(config.get("ipconfig0") or "-"), pve.ipconfig(spec)),
    ]


def _key_label(keys: str) -> str:
    # A public key is not secret, but a whole one is noise: its type and comment say enough.
    if not keys:
        return "-"
    parts = keys.splitlines()[0].split()
    label = " ".join([parts[0], *parts[2:3]]) if parts else "?"
    more = len(keys.splitlines()) - 1
    return label + (f" (+{more})" if more else "")


# Keys PVE applies to a running VM at once; the others wait for the next start (pending).
_HOT: Final = ("tags",)


def _plan_update(vm: VmPlan, guest: Guest, key: str, cluster: Cluster, allow_restart: bool) -> None:
    spec = vm.spec
    if guest.node != spec.node:
        vm.refusals.append(
            f"VM {spec.vm_id} is on node {guest.node}, declared {spec.node}: migrating is not "
            "done here (qm migrate), or declare node_name"
        )
        return
    if guest.template:
        vm.refusals.append(f"VM {spec.vm_id} is a template: declare another vm_id")
        return
    if guest.lock:
        vm.refusals.append(
            f"VM {spec.vm_id} is locked ({guest.lock}): PVE refuses changes while a "
            f"{guest.lock} holds it; apply again when it is done"
        )
        return
    current = cluster.configs.get(spec.vm_id, {})
    pending = cluster.pending.get(spec.vm_id, {})
    running = guest.status == "running"
    wanted = pve.desired(spec, key)
    if "net0" in current:
        wanted["net0"] = pve.with_bridge(str(current["net0"]), spec.bridge)
    same = _sameness(spec, key)
    needs_restart: list[Change] = []
    for label, name, old, new in _fields(current, spec, key):
        if name == "net0" and "net0" not in current:
            vm.refusals.append(f"VM {spec.vm_id} has no network device net0")
            continue
        now_ok = same[name](current)
        queued = name in pending and pending[name] is not None
        next_ok = same[name]({**current, name: pending[name]}) if queued else now_ok
        if now_ok and next_ok:
            continue
        restart = running and name not in _HOT
        if not next_ok:
            vm.config[name] = wanted[name]
        change = Change(label, old, new, restart=restart)
        vm.changes.append(change)
        if restart:
            needs_restart.append(change)
    _plan_disk(vm, current)
    if needs_restart:
        if allow_restart:
            vm.restart = True
        else:
            fields = ", ".join(c.label for c in needs_restart)
            vm.refusals.append(
                f"{fields}: the running VM applies this only after a restart; {RESTART_HINT}"
            )
    if not running:
        vm.start = True
        vm.changes.append(Change("power", guest.status, "running"))
    if vm.changes:
        vm.action = "update"


def _sameness(spec: VmSpec, key: str) -> dict[str, Callable[[Mapping[str, Any]], bool]]:
    """Per config key: does a config already hold what the site wants?"""
    return {
        "cores": lambda c: pve.cores(c) == spec.cpu_cores,
        "memory": lambda c: pve.memory_mb(c) == spec.memory_mb,
        "tags": lambda c: pve.tags(c.get("tags")) == spec.tags,
        "net0": lambda c: pve.bridge(c) == spec.bridge,
        "agent": pve.agent_enabled,
        "ciuser": lambda c: str(c.get("ciuser") or "") == spec.username,
        "sshkeys": lambda c: pve.sshkeys(c.get("sshkeys")) == pve.sshkeys(key),
        "ipconfig0": lambda c: pve.same_ipconfig(c.get("ipconfig0"), pve.ipconfig(spec)),
    }


def _plan_disk(vm: VmPlan, current: Mapping[str, Any]) -> None:
    spec = vm.spec
    found = pve.disk(current, spec.disk_interface)
    wanted = spec.size_gb * pve.GIB
    storage, size = found if found is not None else ("", None)
    if size is None:
        vm.refusals.append(f"VM {spec.vm_id} has no disk {spec.disk_interface} of known size")
        return
    if storage != spec.datastore_id:
        vm.refusals.append(
            f"disk {spec.disk_interface} is on {storage!r}, declared {spec.datastore_id!r}: "
            "moving a disk is not done here (qm disk move)"
        )
    if size > wanted:
        vm.refusals.append(
            f"disk {spec.disk_interface} is {pve.human_size(size)}, declared "
            f"size_gb = {spec.size_gb}: PVE cannot shrink a disk"
        )
    elif size < wanted:
        vm.grow_to = wanted
        vm.changes.append(
            Change(f"disk {spec.disk_interface}", pve.human_size(size), pve.human_size(wanted))
        )
