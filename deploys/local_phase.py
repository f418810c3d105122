"""The local phase, after the remote one: Argo CD's clusters, repositories, Image Updater Secrets.

Alone: ``pyinfra inventories/<site>.py deploys/local_phase.py`` (``make local/phase`` runs the
same code without pyinfra: ``python -m local local/phase <site>``).
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import Host, deploy

from deploys import MANAGEMENT, prepare_run, run_alone, site_of
from local import phase
from operations import local_phase
from tirosh.site import Site


@deploy("local phase")
def argocd_objects(site: Site) -> None:
    """Register what the site declares in Argo CD, from the operator's machine."""
    local_phase.converged(
        name="Local phase: clusters, repositories, Secrets", site=site, phase=phase
    )


def for_host(current: Host) -> None:
    # Once per run: the management VM's turn, after its remote operations.
    if MANAGEMENT in current.groups:
        argocd_objects(site=site_of(current))


if run_alone(__name__):
    prepare_run(host)
    for_host(host)
