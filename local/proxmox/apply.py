"""Carrying out a plan: full clone, configuration, cloud-init, disk growth, start.

Every step that PVE runs as a task (clone, resize, shutdown, start) is awaited by its UPID
within a bound; a failed task stops the apply with the task's own log. Only what the plan
lists is sent, so a second apply of a converged site sends no request that changes anything.
Nothing is ever deleted, and a VM is never stopped by force: a shutdown that outlasts its
bound leaves the VM running, with its change pending.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from local.proxmox import tasks
from tirosh.proxmox import config as pve
from tirosh.proxmox.plan import Plan, VmPlan

__all__ = ["Bounds", "apply_plan"]


@dataclass(frozen=True)
class Bounds:
    """Seconds to wait at most: for one task, for a guest's shutdown, for its agent's address."""

    task: float = 300.0
    shutdown: float = 180.0
    agent: float = 120.0


def apply_plan(api: Any, plan: Plan, bounds: Bounds, say: Callable[[str], None]) -> int:
    """Apply every VM's steps in order; the number of VMs changed. The plan must not be refused."""
    assert not plan.refused, "a refused plan is never applied"
    changed = 0
    for vm in plan.changing:
        if vm.action == "create":
            _create(api, vm, bounds, say)
        else:
            _update(api, vm, bounds, say)
        changed += 1
    return changed


def _wait(api: Any, vm: VmPlan, upid: Any, what: str, bound: float) -> None:
    # Older PVE answered some of these synchronously (no UPID): nothing to wait for then.
    if isinstance(upid, str) and upid.startswith("UPID:"):
        tasks.wait(api, vm.spec.node, upid, f"{vm.title}: {what}", bound)


def _create(api: Any, vm: VmPlan, bounds: Bounds, say: Callable[[str], None]) -> None:
    spec = vm.spec
    node = api.nodes(spec.node)
    say(f"{vm.title}: full clone of template {spec.template_vm_id}")
    upid = node.qemu(spec.template_vm_id).clone.post(
        newid=spec.vm_id, name=spec.name, full=1, storage=spec.datastore_id
    )
    _wait(api, vm, upid, f"clone of template {spec.template_vm_id}", bounds.task)
    target = node.qemu(spec.vm_id)
    settings = dict(vm.config)
    # The clone has a new MAC: set the bridge on its own net0.
    net0 = target.config.get().get("net0")
    if net0 is not None:
        settings["net0"] = pve.with_bridge(str(net0), spec.bridge)
    say(f"{vm.title}: set {', '.join(sorted(settings))}")
    target.config.put(**settings)
    _grow(api, vm, target, bounds, say)
    _start(api, vm, target, bounds, say)


def _update(api: Any, vm: VmPlan, bounds: Bounds, say: Callable[[str], None]) -> None:
    target = api.nodes(vm.spec.node).qemu(vm.spec.vm_id)
    if vm.config:
        say(f"{vm.title}: set {', '.join(sorted(vm.config))}")
        target.config.put(**vm.config)
    _grow(api, vm, target, bounds, say)
    if vm.restart:
        say(f"{vm.title}: shutdown (at most {bounds.shutdown:g} s), then start")
        # PVE's own timeout is the bound: the task fails instead of hanging, and the VM is
        # never killed (no forceStop).
        upid = target.status.shutdown.post(timeout=int(bounds.shutdown))
        _wait(api, vm, upid, "shutdown", bounds.shutdown + 30)
        _start(api, vm, target, bounds, say)
    elif vm.start:
        _start(api, vm, target, bounds, say)


def _grow(api: Any, vm: VmPlan, target: Any, bounds: Bounds, say: Callable[[str], None]) -> None:
    if vm.grow_to is None:
        return
    size = f"{vm.grow_to // pve.GIB}G"
    say(f"{vm.title}: grow {vm.spec.disk_interface} to {size}")
    upid = target.resize.put(disk=vm.spec.disk_interface, size=size)
    _wait(api, vm, upid, f"growing {vm.spec.disk_interface} to {size}", bounds.task)


def _start(api: Any, vm: VmPlan, target: Any, bounds: Bounds, say: Callable[[str], None]) -> None:
    say(f"{vm.title}: start")
    upid = target.status.start.post()
    _wait(api, vm, upid, "start", bounds.task)
