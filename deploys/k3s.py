"""k3s on the site's management VM: binary, config.yaml, systemd unit, running service.

A change to any of the three restarts k3s once; a run with nothing to change restarts nothing.
"""

from io import StringIO

from pyinfra import host
from pyinfra.operations import files, systemd
from pyinfra.operations.util import any_changed

from facts.k3s import K3sStale
from operations import k3s
from tirosh import k3s as k3s_files
from tirosh.site import Site

site: Site = host.data.site_model  # validated once, by the inventory

# Only the site's target VM (K3S_TARGET_NAME picks another) runs the management cluster.
if "management" in host.groups:
    binary = k3s.binary(
        name=f"Install k3s {site.k3s.version}",
        version=site.k3s.version,
        source=site.k3s.install_source,
        release_url=site.k3s.release_url,
        airgap_dir=site.k3s.airgap_dir,
        sha256=site.k3s.sha256,
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
        src=StringIO(k3s_files.render_config(site.k3s.config, site.name)),
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
