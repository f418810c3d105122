"""The parts of the deploy, as pyinfra ``@deploy`` functions taking the part of the site they need.

``deploy.py`` runs every part for the current host; each part's file also runs alone, as the
Make targets do (``pyinfra inventories/<site>.py deploys/k3s.py``). Either way ``for_host`` picks
what the host does by its inventory groups (``management``, ``rke2``) and takes the site the
inventory loaded once from host data.
"""

from __future__ import annotations

from pyinfra.api import Host

from operations.util import factcache
from operations.util.connection import bound_dead_link, dead_after
from tirosh.inventory import MANAGEMENT, RKE2
from tirosh.site import Site

__all__ = ["MANAGEMENT", "RKE2", "prepare_run", "run_alone", "site_of"]


def prepare_run(current: Host) -> None:
    """Run-wide settings every deploy file starts with (``deploy.py`` and each part alone)."""
    # A dropped link fails the run within TIROSH_SSH_DEAD_AFTER seconds instead of hanging.
    bound_dead_link(current, dead_after())
    # Each fact is read once while nothing on the host changes (pyinfra reads them twice).
    factcache.enable(current.state)


def site_of(host: Host) -> Site:
    """The validated site of the run, loaded once by the inventory (``tirosh/inventory.py``)."""
    site = host.data.get("site_model")
    if not isinstance(site, Site):
        raise TypeError(f"{host.name}: no site in host data; use an inventory from inventories/")
    return site


def run_alone(module_name: str) -> bool:
    """True when pyinfra executes a part's file as a deploy file, False when it is imported.

    pyinfra executes deploy files without a module name: ``__name__`` then resolves to the
    builtins module's.
    """
    return module_name == "builtins"
