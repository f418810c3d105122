"""k3s on the site's management VM: binary, config.yaml, systemd unit, running service.

A change to any of the three restarts k3s once; a run with nothing to change restarts nothing.
"""

from io import StringIO

from pyinfra import host
from pyinfra.operations import files, systemd
from pyinfra.operations.util import any_changed

from operations import k3s
from tirosh import k3s as k3s_files
from tirosh.site import load_site

site = load_site(host.data.site)

if "k3s" in host.data.workloads:
    binary = k3s.binary(
        name=f"Install k3s {site.k3s.version}",
        version=site.k3s.version,
        source=site.k3s.install_source,
        release_url=site.k3s.release_url,
        airgap_dir=site.k3s.airgap_dir,
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
    # Added only when the plan has a change to react to, so a no-op plan lists no conditional
    # restart; `_if` still decides at execute time from what really changed.
    if unit.will_change:
        systemd.daemon_reload(name="Reload systemd after a unit change", _if=unit.did_change)
    if binary.will_change or config.will_change or unit.will_change:
        # Restarts only if already running; a first install is started here exactly once.
        systemd.service(
            name="Restart k3s after a change",
            service="k3s",
            running=True,
            restarted=True,
            _if=any_changed(binary, config, unit),
        )
    systemd.service(
        name="Keep k3s running and enabled at boot",
        service="k3s",
        running=True,
        enabled=True,
    )
