"""lab/images.py and lab/registry.py: the OCI layout the lab writes, without building anything."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest
import yaml

from lab import build, config, images, registry, versions


def _layout(tmp_path: Path) -> images.Store:
    store = images.Store(tmp_path / "layout")
    program = tmp_path / "program"
    program.write_bytes(b"\x7fELF not really")
    template = tmp_path / "page.html"
    template.write_text("<html></html>")
    template.chmod(0o444)  # as every file in Go's module cache
    layer_tar = tmp_path / "layer.tar"
    images._tar_files(
        layer_tar,
        {"usr/local/bin/tool": program},
        {"usr/local/bin/alias": "/usr/local/bin/tool"},
        {"web/templates/page.html": template},
    )
    layer = store.add_file(layer_tar, images.OCI_LAYER)
    store.image(
        "quay.io/example/tool:v1", [layer], {"User": "999", "Entrypoint": ["/usr/local/bin/tool"]}
    )
    store.image("docker.io/rancher/mirrored-pause:3.6", [layer], {})
    store.close()
    return store


def test_every_blob_is_stored_under_its_own_digest(tmp_path: Path) -> None:
    store = _layout(tmp_path)
    for blob in (store.root / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name


def test_index_names_each_image_and_points_at_its_manifest(tmp_path: Path) -> None:
    store = _layout(tmp_path)
    index = json.loads((store.root / "index.json").read_text())
    names = [m["annotations"]["io.containerd.image.name"] for m in index["manifests"]]
    assert names == ["quay.io/example/tool:v1", "docker.io/rancher/mirrored-pause:3.6"]
    manifest = json.loads(store.path(index["manifests"][0]["digest"]).read_bytes())
    config = json.loads(store.path(manifest["config"]["digest"]).read_bytes())
    assert config["config"]["User"] == "999"
    # diff_ids are the digests of the uncompressed layers, which the layers are.
    assert config["rootfs"]["diff_ids"] == [layer["digest"] for layer in manifest["layers"]]
    assert (
        images.manifest_digests(store.root)["quay.io/example/tool:v1"]
        == index["manifests"][0]["digest"]
    )


def test_a_layer_holds_files_and_symlinks(tmp_path: Path) -> None:
    store = _layout(tmp_path)
    index = json.loads((store.root / "index.json").read_text())
    manifest = json.loads(store.path(index["manifests"][0]["digest"]).read_bytes())
    with tarfile.open(store.path(manifest["layers"][0]["digest"])) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["usr/local/bin/tool"].mode == 0o755
    assert members["usr/local/bin/alias"].issym()
    assert members["web/templates/page.html"].mode == 0o644
    # Every ancestor directory is in the layer, so no runtime invents its mode.
    for directory in ("usr", "usr/local", "usr/local/bin", "web", "web/templates"):
        assert members[directory].isdir() and members[directory].mode == 0o755, directory


def test_building_a_layout_removes_those_of_earlier_keys(tmp_path: Path) -> None:
    parent = tmp_path / "images"
    old, staging, current = parent / "0123", parent / ".images-running", parent / "4567"
    for directory in (old, staging, current):
        (directory / "blobs").mkdir(parents=True)
    images._prune_other_layouts(current)
    assert sorted(p.name for p in parent.iterdir()) == [".images-running", "4567"]


def test_repository_is_the_path_a_mirror_is_asked_for() -> None:
    image = images.Image(
        "public.ecr.aws/docker/library/redis:8.2.3-alpine", images.Blob("sha256:x", 1, "m")
    )
    assert image.repository == "docker/library/redis"
    assert image.tag == "8.2.3-alpine"


def test_archive_is_rewritten_only_for_another_layout(tmp_path: Path) -> None:
    store = _layout(tmp_path)
    output = tmp_path / "airgap" / "images.tar"
    images.archive(store.root, output)
    first = output.stat().st_mtime_ns
    images.archive(store.root, output)
    assert output.stat().st_mtime_ns == first
    with tarfile.open(output) as tar:
        assert {"oci-layout", "index.json"} <= set(tar.getnames())


def test_mirrors_send_every_registry_of_the_lab_images_to_the_lab_registry() -> None:
    mirrors = yaml.safe_load(registry.mirrors("198.51.100.12"))["mirrors"]
    for name in ("quay.io/x", "ghcr.io/x", "public.ecr.aws/x", "docker.io/x"):
        assert mirrors[name.split("/")[0]]["endpoint"] == ["http://198.51.100.12:5000"]


def test_a_release_module_is_taken_only_with_the_manifest_shipped_for_its_version(
    tmp_path: Path,
) -> None:
    """The lab's Argo CD images and the manifest it deploys must come from one release: the
    module's install.yaml is checked against manifests/argocd/SHA256SUMS."""
    shipped = config.REPO_ROOT / "manifests" / "argocd" / f"install-{versions.ARGOCD}.yaml"
    images.check_release_manifest(versions.ARGOCD, shipped)  # the same bytes: accepted
    other = tmp_path / "install.yaml"
    other.write_bytes(shipped.read_bytes().replace(b"argocd:v3.5.8", b"argocd:v3.5.9"))
    with pytest.raises(
        build.BuildError, match=f"is not the pinned .* of install-{versions.ARGOCD}"
    ):
        images.check_release_manifest(versions.ARGOCD, other)
    with pytest.raises(build.BuildError, match=r"no install-v9\.9\.9\.yaml"):
        images.shipped_manifest_sha256("v9.9.9")
