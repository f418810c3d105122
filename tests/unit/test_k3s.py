"""tirosh.k3s: config.yaml rendering, release asset names, checksum files, air-gapped binaries."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from tirosh import k3s


def test_config_renders_the_site_mapping_with_the_mode_as_a_string() -> None:
    config = {
        "write-kubeconfig-mode": "0644",
        "tls-san": ["internal.tirosh.ai", "172.31.0.10"],
        "node-label": ["role=gitops", "site=tirosh-home"],
    }
    text = k3s.render_config(config, "tirosh-home")
    assert text.startswith("# Managed by tirosh-infra from sites/tirosh-home/k3s/vars.yml")
    assert yaml.safe_load(text) == config
    # Unquoted, YAML 1.1 would read this as the integer 420 and k3s would set mode 0420.
    assert "write-kubeconfig-mode: '0644'" in text


def test_empty_config_renders_an_empty_document() -> None:
    assert yaml.safe_load(k3s.render_config({}, "lab")) is None


def test_unit_runs_the_pinned_binary_as_a_notify_service() -> None:
    unit = k3s.render_unit()
    assert "ExecStart=/usr/local/bin/k3s server\n" in unit
    assert "Type=notify" in unit and "KillMode=process" in unit


@pytest.mark.parametrize(
    ("machine", "binary", "checksums"),
    [
        ("x86_64", "k3s", "sha256sum-amd64.txt"),
        ("aarch64", "k3s-arm64", "sha256sum-arm64.txt"),
        ("armv7l", "k3s-armhf", "sha256sum-arm.txt"),
    ],
)
def test_release_assets_follow_install_sh(machine: str, binary: str, checksums: str) -> None:
    assert k3s.assets_for(machine) == k3s.ReleaseAssets(binary, checksums)


def test_release_url_escapes_the_plus_of_the_version() -> None:
    url = k3s.release_url("https://github.com/k3s-io/k3s/releases/download/", "v1.34.3+k3s1", "k3s")
    assert url == "https://github.com/k3s-io/k3s/releases/download/v1.34.3%2Bk3s1/k3s"


@pytest.mark.parametrize(
    ("output", "version"),
    [
        ("k3s version v1.34.3+k3s1 (48ffa7b6)\ngo version go1.24.11\n", "v1.34.3+k3s1"),
        ("", None),
        ("rke2 version v1.37.2+rke2r1 (x)", None),
    ],
)
def test_version_is_read_from_the_first_line(output: str, version: str | None) -> None:
    assert k3s.parse_version(output) == version


def test_checksum_file_lookup_matches_the_exact_asset() -> None:
    text = f"{'a' * 64}  k3s-arm64\n{'b' * 64}  k3s\n{'c' * 64}  k3s-airgap-images-amd64.tar\n"
    assert k3s.checksum_for(text, "k3s") == "b" * 64
    assert k3s.checksum_for(text, "k3s-arm64") == "a" * 64
    with pytest.raises(ValueError, match=r"no sha256 for k3s-armhf"):
        k3s.checksum_for(text, "k3s-armhf")


def test_airgap_binary_is_verified_against_its_checksum_file(tmp_path: Path) -> None:
    (tmp_path / "k3s").write_bytes(b"binary")
    digest = hashlib.sha256(b"binary").hexdigest()
    (tmp_path / "sha256sum-amd64.txt").write_text(f"{digest}  k3s\n")
    assert k3s.verified_airgap_binary(tmp_path, "x86_64") == (tmp_path / "k3s", digest)
    (tmp_path / "k3s").write_bytes(b"tampered")
    with pytest.raises(ValueError, match=r"does not match sha256sum-amd64.txt"):
        k3s.verified_airgap_binary(tmp_path, "x86_64")
    (tmp_path / "sha256sum-amd64.txt").unlink()
    with pytest.raises(ValueError, match=r"missing from the air-gapped k3s directory"):
        k3s.verified_airgap_binary(tmp_path, "x86_64")
