"""Waiting for PVE tasks by UPID, with a bound, and reading a failed task's own log.

Clone, resize, start and shutdown return a UPID; the task runs on the node after the request
has returned. ``wait`` polls ``/nodes/{node}/tasks/{upid}/status`` until it has stopped or the
bound has passed. A task that ends with anything but ``OK`` raises ``TaskFailed`` with the
last lines of its log, which carry PVE's own message (``TASK ERROR: ...``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from local.proxmox.connection import ProxmoxError

__all__ = ["TaskFailed", "TaskTimeout", "wait"]

LOG_LINES = 8


class TaskFailed(ProxmoxError):
    """A task ended with an exit status other than OK."""


class TaskTimeout(ProxmoxError):
    """A task was still running when the bound passed (it goes on in PVE)."""


def wait(
    api: Any,
    node: str,
    upid: str,
    what: str,
    bound: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Wait until the task ``upid`` has stopped; raise TaskFailed or TaskTimeout.

    + what: the step in words ("clone of template 9000 to 210")
    + bound: seconds to wait at most
    """
    deadline = clock() + bound
    delay = 0.05
    task = api.nodes(node).tasks(upid)
    while True:
        status = task.status.get()
        if status.get("status") == "stopped":
            exit_status = str(status.get("exitstatus", ""))
            if exit_status == "OK" or exit_status.startswith("WARNINGS"):
                return
            raise TaskFailed(f"{what}: task failed: {_log_tail(task, exit_status)} ({upid})")
        if clock() >= deadline:
            raise TaskTimeout(
                f"{what}: task still running after {bound:g} s; it goes on in PVE, nothing else "
                f"was sent (see the node's task log: {upid})"
            )
        sleep(min(delay, max(0.0, deadline - clock())))
        delay = min(delay * 2, 1.0)


def _log_tail(task: Any, exit_status: str) -> str:
    try:
        lines = [str(entry.get("t", "")) for entry in task.log.get(limit=500)]
    except Exception:
        return exit_status
    lines = [line for line in lines if line.strip()][-LOG_LINES:]
    return " | ".join(lines) if lines else exit_status
