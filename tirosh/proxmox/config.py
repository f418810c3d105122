"""PVE's configuration values as the API returns them, read and written without a host.

A VM's config (``GET /nodes/{node}/qemu/{vmid}/config``) is a flat mapping of strings and
numbers; disks and NICs are property strings (``local-lvm:vm-210-disk-0,size=40G``,
``virtio=BC:24:11:00:00:01,bridge=vmbr0``), cloud-init keys are ``ciuser``, ``sshkeys``
(URL-encoded) and ``ipconfig0`` (``ip=dhcp`` or ``ip=ADDR/NN,gw=GW``).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from typing import Any, Final

from tirosh.vms import VmSpec

__all__ = [
    "GIB",
    "bridge",
    "desired",
    "disk",
    "has_cloudinit_drive",
    "human_size",
    "ipconfig",
    "parse_size",
    "split_props",
    "sshkeys",
    "tags",
    "with_bridge",
]

GIB: Final = 1024**3
_UNITS: Final = {"": GIB, "K": 1024, "M": 1024**2, "G": GIB, "T": 1024**4}
_SIZE: Final = re.compile(r"([0-9]+(?:\.[0-9]+)?)([KMGT]?)")


def split_props(value: Any) -> tuple[str, dict[str, str]]:
    """(the leading value, {option: value}) of a property string ``vol,opt=x,...``."""
    first, props = "", {}
    for index, part in enumerate(str(value).split(",")):
        key, sep, val = part.partition("=")
        if index == 0 and not sep:
            first = part
        elif sep:
            props[key] = val
    return first, props


def parse_size(text: str) -> int | None:
    """Bytes of a PVE size (``40G``, ``512M``, ``10``: GiB without a unit), None if unreadable."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        return None
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def human_size(size: int) -> str:
    """A size in GiB for plans (``40 GiB``, ``2.5 GiB``)."""
    gib = size / GIB
    return f"{gib:g} GiB"


def disk(config: Mapping[str, Any], interface: str) -> tuple[str, int | None] | None:
    """(storage id, size in bytes or None) of the disk at ``interface``, None without one."""
    value = config.get(interface)
    if value is None:
        return None
    volume, props = split_props(value)
    storage = volume.partition(":")[0] if ":" in volume else ""
    size = parse_size(props["size"]) if "size" in props else None
    return storage, size


def has_cloudinit_drive(config: Mapping[str, Any]) -> bool:
    """True when a drive of the config is a cloud-init drive (``...:vm-N-cloudinit``)."""
    return any(
        re.fullmatch(r"(?:ide|sata|scsi|virtio)\d+", key) and "cloudinit" in str(value)
        for key, value in config.items()
    )


def tags(value: Any) -> tuple[str, ...]:
    """PVE's tags (``a;b``, also split at commas and spaces) as a sorted, lower-case tuple."""
    return tuple(sorted({t.lower() for t in re.split(r"[;, ]+", str(value or "")) if t}))


def bridge(config: Mapping[str, Any]) -> str | None:
    """The bridge of net0, or None without net0."""
    if "net0" not in config:
        return None
    return split_props(config["net0"])[1].get("bridge")


def with_bridge(net0: str, new: str) -> str:
    """net0 with another bridge; the model, MAC and every other option kept."""
    parts = str(net0).split(",")
    out = [p for p in parts if not p.startswith("bridge=")]
    return ",".join([*out[:1], f"bridge={new}", *out[1:]])


def sshkeys(value: Any) -> str:
    """The public keys of ``sshkeys`` (PVE keeps them URL-encoded), one per line, stripped."""
    text = urllib.parse.unquote(str(value or ""))
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


def encode_sshkeys(keys: str) -> str:
    """``sshkeys`` as PVE's API takes it: URL-encoded, spaces as %20 (PVE decodes no '+')."""
    return urllib.parse.quote(keys.strip() + "\n", safe="")


def ipconfig(spec: VmSpec) -> str:
    """``ipconfig0`` for the VM's ip_config."""
    if spec.ipv4 == "dhcp":
        return "ip=dhcp"
    return f"ip={spec.ipv4},gw={spec.gateway}"


def same_ipconfig(current: Any, wanted: str) -> bool:
    """Whether two ipconfig values mean the same (option order does not matter)."""
    return _options(current) == _options(wanted)


def _options(value: Any) -> dict[str, str]:
    return dict(part.partition("=")[::2] for part in str(value or "").split(",") if part)


def memory_mb(config: Mapping[str, Any]) -> int:
    """``memory`` in MiB (``8192`` or PVE 8.1's ``current=8192``); PVE's default is 512."""
    text = str(config.get("memory", "512"))
    _, props = split_props(text)
    value = props.get("current", text.split(",")[0])
    return int(value) if value.isdigit() else 512


def cores(config: Mapping[str, Any]) -> int:
    text = str(config.get("cores", "1"))
    return int(text) if text.isdigit() else 1


def agent_enabled(config: Mapping[str, Any]) -> bool:
    first, props = split_props(config.get("agent", "0"))
    return (props.get("enabled", first) or "0") in ("1", "true", "yes", "on")


def desired(spec: VmSpec, public_key: str) -> dict[str, str]:
    """The config keys the site sets on the VM, as the API takes them (disk size apart)."""
    return {
        "cores": str(spec.cpu_cores),
        "memory": str(spec.memory_mb),
        "tags": ";".join(spec.tags),
        "agent": "1",
        "ciuser": spec.username,
        "sshkeys": encode_sshkeys(public_key),
        "ipconfig0": ipconfig(spec),
    }
