"""What the plan needs from PVE, read with GET requests only.

Quorum (``/cluster/status``), the nodes, every guest of the cluster (``/cluster/resources``:
containers too, their ids are taken), and for the declared VMs that exist and the templates
they clone: the config and the pending changes; the image storages of the declared nodes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tirosh.proxmox.plan import Cluster, Guest
from tirosh.vms import VmSpec

__all__ = ["read_cluster"]


def read_cluster(api: Any, specs: Iterable[VmSpec]) -> Cluster:
    specs = list(specs)
    status = api.cluster.status.get()
    quorate = all(
        str(entry.get("quorate", 1)) == "1" for entry in status if entry.get("type") == "cluster"
    )
    nodes = {str(n["node"]): n.get("status") == "online" for n in api.nodes.get()}
    resources = api.cluster.resources.get(type="vm")
    guests = tuple(_guest(entry) for entry in resources)
    # Containers hold ids too (a clash is refused), but have no qemu config to read.
    qemu = {int(e["vmid"]) for e in resources if str(e.get("type", "qemu")) == "qemu"}
    by_id = {g.vmid: g for g in guests}
    storages = {}
    for node in {s.node for s in specs if nodes.get(s.node)}:
        storages[node] = frozenset(
            str(entry["storage"])
            for entry in api.nodes(node).storage.get()
            if "images" in str(entry.get("content", "")).split(",")
            and str(entry.get("active", 1)) == "1"
            and str(entry.get("enabled", 1)) == "1"
        )
    configs: dict[int, dict[str, Any]] = {}
    pending: dict[int, dict[str, Any]] = {}
    for spec in specs:
        for vmid in (spec.vm_id, spec.template_vm_id):
            guest = by_id.get(vmid)
            if guest is None or vmid in configs or vmid not in qemu or not nodes.get(guest.node):
                continue
            vm = api.nodes(guest.node).qemu(vmid)
            configs[vmid] = dict(vm.config.get())
            if vmid == spec.vm_id:
                pending[vmid] = _pending(vm.pending.get())
    return Cluster(
        quorate=quorate,
        nodes=nodes,
        guests=guests,
        storages=storages,
        configs=configs,
        pending=pending,
    )


def _guest(entry: dict[str, Any]) -> Guest:
    name = str(entry.get("name") or f"VM {entry.get('vmid')}")
    if str(entry.get("type", "qemu")) != "qemu":
        name = f"{name} (a container)"
    return Guest(
        vmid=int(entry["vmid"]),
        name=name,
        node=str(entry.get("node", "")),
        status=str(entry.get("status", "unknown")),
        template=str(entry.get("template", 0)) == "1",
        lock=str(entry["lock"]) if entry.get("lock") else None,
    )


def _pending(items: list[dict[str, Any]]) -> dict[str, Any]:
    """{key: the value the next start applies} for keys with a pending change."""
    out: dict[str, Any] = {}
    for item in items:
        if "pending" in item:
            out[str(item["key"])] = item["pending"]
        elif item.get("delete"):
            out[str(item["key"])] = None
    return out
