"""The VM's address from the QEMU guest agent, waited for with a bound.

After a start the agent answers only once the guest has booted and started it; until then PVE
answers ``QEMU guest agent is not running``. The last such reason is what the operator sees
when the bound passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from proxmoxer import ResourceException

from local.proxmox.connection import describe_error
from tirosh.proxmox import addresses
from tirosh.proxmox import config as pve
from tirosh.vms import ProxmoxAccess, VmSpec

__all__ = ["wait_address"]


def wait_address(
    api: Any,
    access: ProxmoxAccess,
    spec: VmSpec,
    bound: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[str | None, str]:
    """(address, "") once the agent reports one, else (None, the reason) after ``bound`` s."""
    vm = api.nodes(spec.node).qemu(spec.vm_id)
    mac = pve.split_props(vm.config.get().get("net0", ""))[0].partition("=")[2] or None
    deadline = clock() + bound
    delay = 0.2
    while True:
        status = ""
        try:
            answer = vm.agent("network-get-interfaces").get()
            found = addresses.pick_address((answer or {}).get("result") or [], mac)
            if found:
                return found, ""
            reason = "the guest agent reports no usable address yet"
        except ResourceException as exc:
            # PVE's own message first: "QEMU guest agent is not running (PVE 500, waited 5 s)"
            said = describe_error(exc, access).removeprefix("PVE answered ")
            code, _, message = said.partition(": ")
            reason, status = (message, f"PVE {code}, ") if message else (said, "")
        if clock() >= deadline:
            return None, f"{reason} ({status}waited {bound:g} s)"
        sleep(min(delay, max(0.0, deadline - clock())))
        delay = min(delay * 2, 5.0)
