"""tirosh.inventory: the pyinfra inventory a site turns into, without connecting anywhere."""

from __future__ import annotations

import pytest

from tirosh import inventory
from tirosh.site import load_site

ENV = {"HOME": "/home/op"}


def test_tirosh_home_has_one_management_vm_and_no_rke2_host() -> None:
    groups = inventory.groups(load_site("tirosh-home", environ=ENV))
    assert [name for name, _ in groups["k3s"]] == ["argocd"]
    assert groups["rke2"] == []
    ((name, data),) = groups["argocd"]
    assert data["ssh_hostname"] == "172.31.0.10"
    assert data["ssh_user"] == "tirosh"
    assert data["_sudo"] is True and "_sudo_user" not in data  # become root
    assert data["site"] == "tirosh-home"
    assert data["workloads"] == ["k3s", "argocd"]


def test_lab_hosts_use_the_lab_key_with_strict_host_keys() -> None:
    groups = inventory.groups(load_site("lab", environ=ENV))
    ((_, rke2),) = groups["rke2"]
    assert rke2["ssh_hostname"] == "198.51.100.11"
    assert rke2["ssh_key"].endswith(".lab/ssh/id_ed25519")
    assert rke2["ssh_strict_host_key_checking"] == "yes"


def test_password_goes_to_the_ssh_login_only_when_asked() -> None:
    site = load_site("tirosh-home", environ=ENV)
    data = inventory.host_data(site, site.target, password="pw")
    assert data["ssh_password"] == "pw"
    # A sudo password would travel inside the remote command line: sudo must be NOPASSWD.
    assert "_sudo_password" not in data
    assert "ssh_password" not in inventory.host_data(site, site.target)


def test_invalid_site_exits_before_any_connection(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        inventory.load_groups("tirosh-home", {**ENV, "K3S_TARGET_NAME": "nope"})
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "nothing was changed" in err
    assert "environment: K3S_TARGET_NAME:" in err
