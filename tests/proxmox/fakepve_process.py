"""A test double of the Proxmox VE API in its own process: fakepve, plus what these tests need.

Run by the ``pve`` fixture as ``python -m tests.proxmox.fakepve_process DIR``: it writes its
self-signed certificate to ``DIR/fakepve.crt`` (the tests' CA file) and prints
``ready API_PORT CONTROL_PORT`` once both listen on 127.0.0.1. fakepve (AGPL-3.0) is imported
here only, in this separate process of the test suite: the project's code never imports it and
only talks HTTPS to it, as to a PVE node.

Beside fakepve's own behaviour this adds, named as such:

- **the API token** ``tirosh-infra@pve!vms`` whose secret is ``FAKEPVE_TOKEN_SECRET`` (the
  fake's command line has no option for tokens);
- **a template** 9000 ``debian-13-cloud`` on pve1 with a 10 GiB ``scsi0`` on local-lvm, a
  cloud-init drive and net0 on vmbr0, as ``qm template`` leaves one;
- **disk resize** (``PUT /nodes/{node}/qemu/{vmid}/resize``): outside fakepve's hand-written
  areas a write "succeeds and changes nothing", so a grown disk would read back at its old
  size. Here it follows qemu-server's ``resize_vm``: a task; ``+N`` or an absolute size;
  "shrinking disks is not supported"; the VM's lock and quorum checked; the volume and the
  ``size=`` of the drive updated;
- **a control API** on a second port (plain HTTP, loopback): ``GET /requests`` (fakepve's
  request log: method and path, bodies redacted by fakepve), ``GET /vm/ID``, ``POST /do`` with
  a scenario (lose quorum, lock a VM as a backup does, agent up, slow shutdown, start error,
  time scale, a VM that holds an id).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
import time
from typing import Any

from aiohttp import web
from fakepve import FakePve, FakeVm, PveError, TaskError
from fakepve.lxc import SIZE_UNITS, format_size
from fakepve.qemu import join_drive, split_drive

TOKEN_ID = "tirosh-infra@pve!vms"
TEMPLATE_ID = 9000
GIB = 1024**3


class Pve(FakePve):
    """fakepve with the qemu resize worker (see the module docstring)."""

    def _routes_resize(self) -> list[tuple[str, str, Any]]:
        return [("PUT", "/nodes/{node}/qemu/{vmid}/resize", self._qm_resize)]

    async def _qm_resize(self, v: dict[str, Any], user: str) -> str:
        vm = self.find(v["node"], v["vmid"])
        self.need_quorum()
        disk = v["disk"]
        if disk not in vm.config:
            raise PveError(500, f"disk '{disk}' does not exist")
        match = re.fullmatch(r"(\+?)(\d+(?:\.\d+)?)([KMGT]?)", str(v["size"]))
        if match is None:
            raise PveError(400, "Parameter verification failed.", {"size": "invalid format"})
        if vm.lock:
            raise PveError(500, f"VM is locked ({vm.lock})")
        volume, props = split_drive(vm.config[disk])
        sid, _, name = volume.partition(":")
        store = self.storages[sid].setdefault("volumes", {})
        current = int((store.get(name) or {}).get("size") or 0)
        amount = int(float(match.group(2)) * SIZE_UNITS.get(match.group(3) or "G", 1))
        new = current + amount if match.group(1) else amount

        async def body() -> str | None:
            if new < current:
                raise TaskError("shrinking disks is not supported")
            if new == current:
                return None
            store.setdefault(name, {"content": "images", "format": "raw", "vmid": vm.vmid})
            store[name]["size"] = new
            vm.config[disk] = join_drive(volume, dict(props, size=format_size(new)))
            return f"resized {disk} to {format_size(new)}"

        return await self.task(vm.node, "resize", vm.vmid, user, body, vm=vm)


def make_template(pve: Pve) -> None:
    volumes = pve.storages["local-lvm"].setdefault("volumes", {})
    now = int(time.time())
    volumes["base-9000-disk-0"] = {
        "content": "images",
        "format": "raw",
        "size": 10 * GIB,
        "vmid": TEMPLATE_ID,
        "ctime": now,
    }
    volumes["vm-9000-cloudinit"] = {
        "content": "images",
        "format": "raw",
        "size": 4 * 1024**2,
        "vmid": TEMPLATE_ID,
        "ctime": now,
    }
    pve.add_vm(
        TEMPLATE_ID,
        "debian-13-cloud",
        template=True,
        config={
            "scsi0": "local-lvm:base-9000-disk-0,size=10G",
            "ide2": "local-lvm:vm-9000-cloudinit,media=cdrom",
            "net0": "virtio=BC:24:11:00:90:00,bridge=vmbr0",
            "scsihw": "virtio-scsi-pci",
            "boot": "order=scsi0",
            "cores": 1,
            "memory": "2048",
            "serial0": "socket",
            "template": 1,
        },
    )


def _vm(pve: Pve, vmid: int) -> FakeVm:
    vm = pve.vm(vmid)
    if vm is None:
        raise web.HTTPNotFound(text=f"no VM {vmid}")
    return vm


async def scenario(pve: Pve, body: dict[str, Any]) -> Any:
    """One change to the fake's state, by name."""
    op = body["op"]
    if op == "lose_quorum":
        pve.lose_quorum()
    elif op == "backup_lock":  # a vzdump holds the VM: lock 'backup' until unlocked
        pve.snapshot_lock(body["vmid"], "backup")
    elif op == "unlock":
        pve.unlock(body["vmid"])
    elif op == "agent":
        vm = _vm(pve, body["vmid"])
        mac = vm.config.get("net0", "").split(",")[0].partition("=")[2]
        vm.agent = {
            "interfaces": [
                {
                    "name": "lo",
                    "hardware-address": "00:00:00:00:00:00",
                    "ip-addresses": [
                        {"ip-address": "127.0.0.1", "ip-address-type": "ipv4", "prefix": 8}
                    ],
                },
                {
                    "name": "eth0",
                    "hardware-address": mac.lower(),
                    "ip-addresses": [
                        {"ip-address": "fe80::1", "ip-address-type": "ipv6", "prefix": 64},
                        {"ip-address": body["address"], "ip-address-type": "ipv4", "prefix": 24},
                    ],
                },
            ]
        }
    elif op == "set":  # shutdown_secs, start_error, status, ...
        vm = _vm(pve, body["vmid"])
        for key, value in body["values"].items():
            setattr(vm, key, value)
            if key == "status":
                vm.qmpstatus = value
    elif op == "config":
        _vm(pve, body["vmid"]).config.update(body["values"])
    elif op == "time_scale":
        pve.time_scale = float(body["value"])
    elif op == "add_vm":
        pve.add_vm(
            body["vmid"],
            body["name"],
            status=body.get("status", "stopped"),
            config=body.get("config", {}),
        )
    elif op == "fail":
        pve.fail(body["method"], body["suffix"], error=body["error"], times=body.get("times"))
    else:
        raise web.HTTPBadRequest(text=f"unknown op {op!r}")
    return {"ok": True}


def control_app(pve: Pve) -> web.Application:
    async def requests(_: web.Request) -> web.Response:
        return web.json_response([[m, p] for m, p, _ in pve.requests])

    async def vm_state(request: web.Request) -> web.Response:
        vm = _vm(pve, int(request.match_info["vmid"]))
        return web.json_response(
            {"config": vm.config, "pending": vm.pending, "status": vm.status, "lock": vm.lock}
        )

    async def do(request: web.Request) -> web.Response:
        return web.json_response(await scenario(pve, await request.json()))

    app = web.Application()
    app.router.add_get("/requests", requests)
    app.router.add_get("/vm/{vmid}", vm_state)
    app.router.add_post("/do", do)
    return app


async def serve(directory: str) -> None:
    from fakepve.certs import make_cert

    cert, key, _ = make_cert(directory, hosts=("127.0.0.1",))
    pve = Pve(host="127.0.0.1", port=0)
    pve.time_scale = 0
    pve.apitokens[TOKEN_ID] = os.environ["FAKEPVE_TOKEN_SECRET"]
    make_template(pve)
    await pve.start(cert, key)
    runner = web.AppRunner(control_app(pve))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    control_port = runner.addresses[0][1]
    print(f"ready {pve.port} {control_port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(sys.argv[1]))
