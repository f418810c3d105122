"""The site's own hosts for pytest-testinfra, built from the site's inventory.

`make verify SITE=<site>` runs this suite against the management VM of ``sites/<site>/`` over SSH,
logging in as the deploy does (user, port, key, known_hosts and sudo from the inventory). It only
reads: nothing on the VM changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import testinfra

from tirosh.inventory import load_groups
from tirosh.site import Site, load_site


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--site", required=True, help="the folder of sites/ to verify")


@pytest.fixture(scope="session")
def site(request: pytest.FixtureRequest) -> Site:
    return load_site(str(request.config.getoption("--site")))


def ssh_config(alias: str, data: dict[str, Any]) -> str:
    """An ssh_config block that logs in to one inventory host as pyinfra does."""
    lines = [f"Host {alias}", f"  HostName {data['ssh_hostname']}", f"  User {data['ssh_user']}"]
    if data.get("ssh_port"):
        lines.append(f"  Port {data['ssh_port']}")
    if data.get("ssh_key"):
        lines += [f"  IdentityFile {data['ssh_key']}", "  IdentitiesOnly yes"]
    if data.get("ssh_known_hosts_file"):
        lines += [
            f"  UserKnownHostsFile {data['ssh_known_hosts_file']}",
            "  StrictHostKeyChecking yes",
        ]
    lines.append("  BatchMode yes")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def management(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The VM that runs k3s and Argo CD, as a testinfra host with sudo."""
    ((alias, data),) = [(a, d) for a, d in load_groups(site.name)["management"]]
    config = Path(tmp_path_factory.mktemp("ssh")) / "config"
    config.write_text(ssh_config(alias, data))
    config.chmod(0o600)
    sudo_user = data.get("_sudo_user")
    yield testinfra.get_host(
        f"ssh://{alias}", ssh_config=str(config), sudo=bool(data.get("_sudo")), sudo_user=sudo_user
    )
