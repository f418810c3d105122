"""Stopping a child that leads its own process group: nothing it started is left running."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from typing import Any

__all__ = ["stop_group"]


def stop_group(process: subprocess.Popen[Any], grace: float, *, term_group: bool = True) -> None:
    """SIGTERM, ``grace`` seconds to exit, then SIGKILL the whole group, and reap the child.

    + process: started with ``start_new_session=True`` (its pid is its process group)
    + grace: seconds between SIGTERM and SIGKILL
    + term_group: SIGTERM the group (True) or the child alone (a supervisor that stops its
      own children in order)
    """
    if process.poll() is None:
        try:
            if term_group:
                os.killpg(process.pid, signal.SIGTERM)
            else:
                process.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
