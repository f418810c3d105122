"""One lab host destroyed and booted again from nothing: the management VM lost and recreated.

``recreate("argocd")`` stops the host and removes every trace (its overlay: k3s, its CA, Argo
CD and its admin password go with it), boots a fresh overlay of the same root filesystem at the
same address with a new SSH host key, records that key for the operator's SSH, and waits for
SSH. The other hosts keep running. Tests (tests/lab/test_gitops_loop.py) then deploy again.
"""

from __future__ import annotations

import time

from lab import config, hosts, lifecycle

__all__ = ["recreate"]


def recreate(name: str = config.NODE_HOST) -> float:
    """Destroy and boot ``name`` empty; the seconds it took (until SSH answers)."""
    base, bin_dir, standin, node = lifecycle.prepare()
    lab_host = config.host(name)
    started = time.monotonic()
    hosts.stop(name)
    line = hosts.boot(lab_host, base, bin_dir, standin, node if name == config.NODE_HOST else None)
    kept = [
        known
        for known in config.KNOWN_HOSTS.read_text().splitlines()
        if not known.startswith(f"{lab_host.address} ")
    ]
    config.KNOWN_HOSTS.write_text("\n".join([*kept, line]) + "\n")
    hosts.wait_for_ssh(lab_host)
    return time.monotonic() - started
