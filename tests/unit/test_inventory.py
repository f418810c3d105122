"""tirosh.inventory: the pyinfra inventory a site turns into, without connecting anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tirosh import inventory
from tirosh.site import load_site

ENV = {"HOME": "/home/op"}
REPO = Path(__file__).resolve().parents[2]
PYINFRA = str(Path(sys.executable).parent / "pyinfra")


def test_tirosh_home_has_one_management_vm_and_no_rke2_host() -> None:
    groups = inventory.groups(load_site("tirosh-home", environ=ENV))
    assert [name for name, _ in groups["management"]] == ["argocd"]
    assert groups["rke2"] == []
    ((_, data),) = groups["management"]
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


def test_an_asked_password_is_redacted_in_pyinfras_debug_output() -> None:
    # The real pyinfra CLI and SSH connector; the host is a closed port on loopback, so the
    # connection fails right after pyinfra logs its arguments (password included) at --debug.
    canary = "canary-Ssh-Pw-5d1e"
    result = subprocess.run(
        [PYINFRA, "-y", "-vvv", "--debug", "tests/inventories/ask_pass.py", "exec", "--", "true"],
        input=canary + "\n",
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "ASK_PASS": "true"},
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert "Connecting to: 127.0.0.1" in output  # the line that carries the arguments
    assert "'password': '***'" in output
    assert canary not in output


def test_every_host_carries_the_site_loaded_once() -> None:
    site = load_site("lab", environ=ENV)
    groups = inventory.groups(site)
    # Roles are groups: the deploys test membership, `--limit` picks by the same names.
    assert [name for name, _ in groups["management"]] == [site.target.alias]
    assert [name for name, _ in groups["rke2"]] == ["rke2-gpu"]
    assert all(data["site_model"] is site for hosts in groups.values() for _, data in hosts)
