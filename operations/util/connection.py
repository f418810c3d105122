"""Bound how long a deploy waits on an SSH connection whose network link has gone.

paramiko blocks on a read from a dead link for as long as TCP keeps retransmitting (about 15
minutes on Linux), so a VPN drop or a pulled cable mid-converge looks like a hang. A keepalive
request every few seconds keeps data in flight, and ``TCP_USER_TIMEOUT`` makes the kernel abort
the connection once that data has gone unacknowledged for the bound: the command fails, pyinfra
reports the host as failed, and the next run converges from where the VM is.
"""

from __future__ import annotations

import os
import socket
from typing import Any

# Seconds of silence from the VM after which the connection is declared dead.
DEFAULT_DEAD_AFTER = 30
ENV_DEAD_AFTER = "TIROSH_SSH_DEAD_AFTER"
KEEPALIVE_INTERVAL = 5


def dead_after(environ: dict[str, str] | None = None) -> int:
    """The bound in seconds: ``TIROSH_SSH_DEAD_AFTER`` or the default."""
    value = (os.environ if environ is None else environ).get(ENV_DEAD_AFTER, "")
    if not value:
        return DEFAULT_DEAD_AFTER
    if not value.isascii() or not value.isdigit() or not 5 <= int(value) <= 3600:
        raise ValueError(f"{ENV_DEAD_AFTER} must be whole seconds from 5 to 3600, got {value!r}")
    return int(value)


def bound_dead_link(host: Any, seconds: int) -> bool:
    """Make ``host``'s SSH connection fail within ``seconds`` of losing its link.

    Returns False for connectors without an SSH transport (``@local``, ``@fake``).
    """
    client = getattr(host.connector, "client", None)
    transport = client.get_transport() if client is not None else None
    if transport is None:
        return False
    transport.set_keepalive(min(KEEPALIVE_INTERVAL, seconds))
    sock = transport.sock
    if isinstance(sock, socket.socket) and hasattr(socket, "TCP_USER_TIMEOUT"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, seconds * 1000)
    return True
