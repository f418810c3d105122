"""The address to reach a VM at, from the guest agent's ``network-get-interfaces`` answer.

The agent lists every interface of the guest: loopback, link-local and container bridges too.
The address is the one on the NIC PVE gave the VM (net0's MAC) when the agent names it, else
on any other interface: IPv4 first, then a global IPv6; never loopback, link-local or
multicast.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["pick_address"]


def _usable(text: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(str(text).split("%")[0])
    except ValueError:
        return None
    if address.is_loopback or address.is_link_local or address.is_multicast:
        return None
    if address.is_unspecified:
        return None
    return address


def pick_address(interfaces: Iterable[Mapping[str, Any]], mac: str | None = None) -> str | None:
    """The VM's address, or None when the agent reports none that can be used.

    + interfaces: the ``result`` list of ``agent/network-get-interfaces``
    + mac: net0's MAC address, whose interface is preferred
    """
    ranked: list[tuple[int, int, int, str]] = []
    for order, interface in enumerate(interfaces):
        if not isinstance(interface, Mapping):
            continue
        hardware = str(interface.get("hardware-address") or "").lower()
        on_nic = 0 if mac and hardware == mac.lower() else 1
        for entry in interface.get("ip-addresses") or ():
            if not isinstance(entry, Mapping):
                continue
            address = _usable(entry.get("ip-address"))
            if address is None:
                continue
            ranked.append((on_nic, 0 if address.version == 4 else 1, order, str(address)))
    return min(ranked)[3] if ranked else None
