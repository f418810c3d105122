"""k3s on the site's management VM: binary, config.yaml, systemd unit, running service.

A change to any of the three restarts k3s once; a run with nothing to change restarts nothing.
Alone: ``pyinfra inventories/<site>.py deploys/k3s.py`` (``make k3s/install``).
"""

from __future__ import annotations

from io import StringIO

from pyinfra import host
from pyinfra.api import Host, deploy
from pyinfra.operations import files, systemd
from pyinfra.operations.util import any_changed

from deploys import MANAGEMENT, prepare_run, run_alone, site_of
from facts.k3s import K3sStale
from operations import k3s
from tirosh import k3s as k3s_files
from tirosh.site import K3s


@deploy("k3s")
def server(settings: K3s, site_name: str) -> None:
    """Install, configure and run k3s as ``settings`` say (``site_name`` heads config.yaml)."""
    binary = k3s.binary(
        name=f"Install k3s {settings.version}",
        version=settings.version,
        source=settings.install_source,
        release_url=settings.release_url,
        airgap_dir=settings.airgap_dir,
        sha256=settings.sha256,
    )
    files.directory(
        name="Create /etc/rancher/k3s",
        path="/etc/rancher/k3s",
        user="root",
        group="root",
        mode="755",
    )
    config = files.put(
        name=f"Render {k3s_files.CONFIG_PATH}",
        src=StringIO(k3s_files.render_config(settings.config, site_name)),
        dest=k3s_files.CONFIG_PATH,
        user="root",
        group="root",
        mode="600",
    )
    unit = files.put(
        name=f"Install the k3s systemd unit {k3s_files.UNIT_PATH}",
        src=StringIO(k3s_files.render_unit()),
        dest=k3s_files.UNIT_PATH,
        user="root",
        group="root",
        mode="644",
    )
    # Files a previous, interrupted run changed without restarting k3s (read before this run).
    stale = host.get_fact(K3sStale)
    changes = (binary, config, unit)
    # Added only when there is something to react to, so a no-op plan lists no restart; what
    # really changed is decided at execute time.
    if stale or any(op.will_change for op in changes):
        k3s.restarted(
            name="Restart k3s after a change",
            reasons=stale or ["changed in this run"],
            _if=lambda: bool(stale) or any_changed(*changes)(),
        )
    systemd.service(
        name="Keep k3s running and enabled at boot",
        service="k3s",
        running=True,
        enabled=True,
    )


def for_host(current: Host) -> None:
    # Only the management VM (K3S_TARGET_NAME picks another) runs the management cluster.
    if MANAGEMENT in current.groups:
        site = site_of(current)
        server(settings=site.k3s, site_name=site.name)


if run_alone(__name__):
    prepare_run(host)
    for_host(host)
