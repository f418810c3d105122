"""Container images assembled here, never pulled: OCI images from Debian and the lab's Go builds.

Each image is a Debian base layer (debootstrap of versions.IMAGE_PACKAGES) and/or a layer with
the lab's binaries, named exactly as Argo CD's manifest and k3s name them. All images go into one
OCI archive in the cache, keyed by everything that goes in: the argocd host imports it into
containerd as k3s imports air-gap images, and the lab's registry mirror serves the same blobs to
pulls (the manifest's `imagePullPolicy: Always` makes the kubelet pull even when present).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from lab import build, config, rootfs, versions

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Argo CD's image: user argocd (999), its config directories, the ssh known_hosts link the
# manifest's ConfigMap mount relies on. Runs in a chroot of the image base.
_IMAGE_CONFIGURE = """
set -eu
groupadd -g 999 argocd && useradd -r -u 999 -g argocd -m -d /home/argocd -s /bin/sh argocd
mkdir -p /app/config/ssh /app/config/tls /app/config/gpg/source /app/config/gpg/keys
ln -sf /app/config/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts
chown -R 999:999 /app/config
apt-get clean
rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /var/cache/debconf/*-old
systemctl disable redis-server.service 2>/dev/null || true
"""

ARGOCD_COMMANDS = (
    "argocd-server",
    "argocd-repo-server",
    "argocd-cmp-server",
    "argocd-application-controller",
    "argocd-applicationset-controller",
    "argocd-dex",
    "argocd-notifications",
    "argocd-k8s-auth",
    "argocd-commit-server",
)


@dataclass(frozen=True)
class Blob:
    digest: str  # sha256:<hex>
    size: int
    media_type: str


@dataclass
class Image:
    name: str  # full reference: registry/repository:tag
    manifest: Blob
    blobs: list[Blob] = field(default_factory=list)  # config and layers

    @property
    def repository(self) -> str:
        """The path on a registry mirror: the name without its registry host and tag."""
        return self.name.split("/", 1)[1].rsplit(":", 1)[0]

    @property
    def tag(self) -> str:
        return self.name.rsplit(":", 1)[1]


class Store:
    """An OCI image layout directory being filled: blobs/sha256/<hex> and index.json."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        self.images: list[Image] = []

    def path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / digest.removeprefix("sha256:")

    def add_bytes(self, data: bytes, media_type: str) -> Blob:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.path(digest).write_bytes(data)
        return Blob(digest, len(data), media_type)

    def add_file(self, source: Path, media_type: str) -> Blob:
        digest = hashlib.sha256()
        with source.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        blob = Blob("sha256:" + digest.hexdigest(), source.stat().st_size, media_type)
        os.replace(source, self.path(blob.digest))
        return blob

    def image(self, name: str, layers: list[Blob], settings: dict[str, object]) -> Image:
        config_json = {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": [PATH_ENV], **settings},
            "rootfs": {"type": "layers", "diff_ids": [layer.digest for layer in layers]},
            "history": [{"created_by": "tirosh-lab (lab/images.py)"} for _ in layers],
        }
        cfg = self.add_bytes(_canonical(config_json), OCI_CONFIG)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": _descriptor(cfg),
            "layers": [_descriptor(layer) for layer in layers],
        }
        image = Image(name, self.add_bytes(_canonical(manifest), OCI_MANIFEST), [cfg, *layers])
        self.images.append(image)
        return image

    def close(self) -> None:
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    **_descriptor(image.manifest),
                    "annotations": {
                        "io.containerd.image.name": image.name,
                        "org.opencontainers.image.ref.name": image.tag,
                    },
                }
                for image in self.images
            ],
        }
        (self.root / "index.json").write_bytes(_canonical(index))
        (self.root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        images = {image.name: image.manifest.digest for image in self.images}
        (self.root / "images.json").write_bytes(_canonical(images))


def _canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _descriptor(blob: Blob) -> dict[str, object]:
    return {"mediaType": blob.media_type, "digest": blob.digest, "size": blob.size}


def _tar_directory(directory: Path, output: Path) -> None:
    """A reproducible layer: sorted names, numeric owners, fixed times."""
    subprocess.run(
        [
            "tar",
            "--sort=name",
            "--numeric-owner",
            "--mtime=@0",
            "--xattrs",
            "-C",
            str(directory),
            "-cf",
            str(output),
            ".",
        ],
        check=True,
    )


def _tar_files(
    output: Path, files: dict[str, Path], links: dict[str, str], data: dict[str, Path]
) -> None:
    """A layer with programs (path in the image -> file here; mode 0755), symlinks (path ->
    target) and data files (0644). Modes are set here: module-cache files are all read-only."""
    files = {**files, **data}
    with tarfile.open(output, "w", format=tarfile.PAX_FORMAT) as tar:
        # Every ancestor, so that no runtime has to invent a directory's mode.
        directories = sorted({str(a) for p in [*files, *links] for a in Path(p).parents} - {"."})
        for directory in directories:
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for path, source in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size, info.mode = source.stat().st_size, 0o644 if path in data else 0o755
            with source.open("rb") as f:
                tar.addfile(info, f)
        for path, target in sorted(links.items()):
            info = tarfile.TarInfo(path)
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
            tar.addfile(info, io.BytesIO(b""))


def image_base() -> Path:
    """The Debian tree under every image but pause: git, ssh, gpg, tini, redis-server, user 999."""
    return rootfs.ensure("image-base", versions.IMAGE_PACKAGES, _IMAGE_CONFIGURE)


def image_base_cached() -> bool:
    return rootfs.cached("image-base", versions.IMAGE_PACKAGES, _IMAGE_CONFIGURE)


def _module_source(module_dir: Path, module: str) -> Path:
    """Where the go command unpacked module (path@version), downloaded through module_dir's go.mod."""
    result = subprocess.run(
        ["go", "mod", "download", "-json", module],
        cwd=module_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        return Path(json.loads(result.stdout)["Dir"])
    except (ValueError, KeyError):
        problem = (result.stdout + result.stderr).strip().splitlines()[-1:] or ["no output"]
        raise build.BuildError(f"go mod download {module}: {problem[0]}") from None


RELEASE_SCRIPTS = ("gpg-wrapper.sh", "git-verify-wrapper.sh")


def _release_scripts(version: str) -> dict[str, Path]:
    """The release's hack/gpg-wrapper.sh and git-verify-wrapper.sh, which its Dockerfile copies to
    /usr/local/bin (repo-server runs them), from the Argo CD module the lab builds; keyed
    ``<version>/<script>``. The module's install manifest must be the one the repository ships
    for that version (checked against manifests/argocd/SHA256SUMS): the lab's images and the
    manifest it deploys come from the same release."""
    module = _module_source(
        build.argocd_module(version), f"github.com/argoproj/argo-cd/v3@{version}"
    )
    check_release_manifest(version, module / "manifests" / "install.yaml")
    return {f"{version}/{name}": module / "hack" / name for name in RELEASE_SCRIPTS}


MANIFEST_SUMS = config.REPO_ROOT / "manifests" / "argocd" / "SHA256SUMS"


def shipped_manifest_sha256(version: str) -> str:
    """The pinned sha256 of ``install-<version>.yaml`` in manifests/argocd/SHA256SUMS."""
    for line in MANIFEST_SUMS.read_text().splitlines():
        digest, name = line.split()
        if name == f"install-{version}.yaml":
            return digest
    raise build.BuildError(f"{MANIFEST_SUMS}: no install-{version}.yaml: the lab builds {version}")


def check_release_manifest(version: str, manifest: Path) -> None:
    """Refuse a module whose manifest is not the shipped, pinned one of ``version``."""
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest()
    pinned = shipped_manifest_sha256(version)
    if digest != pinned:
        raise build.BuildError(
            f"{manifest}: sha256 {digest} is not the pinned {pinned} of install-{version}.yaml"
        )


def _dex_web() -> dict[str, Path]:
    """Dex's frontend (templates, themes, static), which its v2.13.0 Dockerfile copies to /web:
    that Dex reads it from ./web at run time (later versions embed it)."""
    module = _module_source(
        build.DEX_MODULE_DIR, f"github.com/dexidp/dex@{versions.DEX}+incompatible"
    )
    return {
        str(path.relative_to(module)): path
        for path in sorted((module / "web").rglob("*"))
        if path.is_file()
    }


def _binaries() -> dict[str, Path]:
    node = build.node()
    argocd: dict[str, Path] = {}
    for version in versions.ARGOCD_BUILDS:
        argocd[f"argocd-{version}"] = build.argocd(version)
        argocd.update(_release_scripts(version))
    return {
        **argocd,
        **_dex_web(),
        "coredns": build.coredns(),
        "dex": build.dex(),
        "pause": node / "pause",
        "traefik": build.traefik(),
    }


def image_names() -> list[str]:
    """Every image the lab assembles, under the names the manifests and k3s give them."""
    return [
        *(versions.argocd_image(version) for version in versions.ARGOCD_BUILDS),
        versions.REDIS_IMAGE,
        *versions.DEX_IMAGES,
        versions.PAUSE_IMAGE,
        versions.COREDNS_IMAGE,
        versions.TRAEFIK_IMAGE,
    ]


def key() -> str:
    binaries = _binaries()
    parts = [
        rootfs.key(versions.IMAGE_PACKAGES, _IMAGE_CONFIGURE),
        *image_names(),
        Path(__file__).read_text(),
        *(str(path) for path in binaries.values()),  # cache paths: keyed by pinned versions
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def cached() -> bool:
    """Whether the layout of the current key is built (the binaries it holds must be)."""
    return (config.CACHE_DIR / "images" / key() / "index.json").is_file()


def ensure() -> Path:
    """The OCI layout directory holding every lab image (built on first use, then cached)."""
    final = config.CACHE_DIR / "images" / key()
    if (final / "index.json").is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".images-", dir=final.parent))
    try:
        _assemble(Store(staging), _binaries())
        staging.chmod(0o755)
        shutil.rmtree(final, ignore_errors=True)
        os.rename(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _prune_other_layouts(final)
    return final


def _prune_other_layouts(current: Path) -> None:
    """Remove image layouts of earlier keys (0.5 GB each; rebuilt in seconds from the cached
    binaries if wanted again). Staging directories (dot-names) belong to running builds."""
    for entry in current.parent.iterdir():
        if entry != current and not entry.name.startswith("."):
            shutil.rmtree(entry, ignore_errors=True)


def _assemble(store: Store, binaries: dict[str, Path]) -> None:
    work = store.root / "work"
    work.mkdir()
    _tar_directory(image_base(), work / "base.tar")
    base = store.add_file(work / "base.tar", OCI_LAYER)

    def layer(
        name: str,
        files: dict[str, Path],
        links: dict[str, str] | None = None,
        data: dict[str, Path] | None = None,
    ) -> Blob:
        _tar_files(work / f"{name}.tar", files, links or {}, data or {})
        return store.add_file(work / f"{name}.tar", OCI_LAYER)

    for version in versions.ARGOCD_BUILDS:
        argocd = layer(
            f"argocd-{version}",
            {
                "usr/local/bin/argocd": binaries[f"argocd-{version}"],
                **{
                    f"usr/local/bin/{name}": binaries[f"{version}/{name}"]
                    for name in RELEASE_SCRIPTS
                },
            },
            {f"usr/local/bin/{name}": "/usr/local/bin/argocd" for name in ARGOCD_COMMANDS},
        )
        store.image(
            versions.argocd_image(version),
            [base, argocd],
            {
                "User": "999",
                "WorkingDir": "/home/argocd",
                # As the release's Dockerfile (no gRPC service config lookups by DNS TXT).
                "Env": [PATH_ENV, "USER=argocd", "GRPC_ENABLE_TXT_SERVICE_CONFIG=false"],
                "Entrypoint": ["/usr/bin/tini", "--"],
            },
        )
    # Debian's redis-server 7.0.15 under the manifest's name (8.2.3-alpine upstream).
    store.image(versions.REDIS_IMAGE, [base], {"User": "999", "Entrypoint": ["redis-server"]})
    # Under the manifest's name, Dex v2.13.0: the only Dex v2 the Go module proxy serves
    # (lab/dex/go.mod). Laid out as its own Dockerfile does: dex on PATH, frontend in /web.
    # Argo CD's rundex needs `dex` on PATH and runs it only once SSO is configured.
    # One image under the name of each Argo CD release's manifest (v2.45.0, v2.45.1).
    web = {path: source for path, source in binaries.items() if path.startswith("web/")}
    dex = layer("dex", {"usr/local/bin/dex": binaries["dex"]}, data=web)
    for name in versions.DEX_IMAGES:
        store.image(
            name,
            [base, dex],
            {"User": "1001", "WorkingDir": "/", "Entrypoint": ["dex"], "Cmd": ["version"]},
        )
    store.image(
        versions.COREDNS_IMAGE,
        [base, layer("coredns", {"coredns": binaries["coredns"]})],
        {"Entrypoint": ["/coredns"]},
    )
    store.image(
        versions.TRAEFIK_IMAGE,
        [base, layer("traefik", {"traefik": binaries["traefik"]})],
        {"Entrypoint": ["/traefik"], "User": "65532:65532"},
    )
    store.image(
        versions.PAUSE_IMAGE,
        [layer("pause", {"pause": binaries["pause"]})],
        {"User": "65535:65535", "Entrypoint": ["/pause"]},
    )
    shutil.rmtree(work)
    store.close()


def archive_current(layout: Path, output: Path) -> bool:
    """Whether ``output`` is the archive of ``layout`` already."""
    stamp = output.with_suffix(".key")
    return output.is_file() and stamp.is_file() and stamp.read_text() == layout.name


def archive(layout: Path, output: Path) -> Path:
    """The layout as one tar (an OCI archive `ctr images import` reads), rewritten when stale."""
    stamp = output.with_suffix(".key")
    if archive_current(layout, output):
        return output
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_suffix(".partial")
    entries = ["oci-layout", "index.json", "blobs"]
    subprocess.run(["tar", "-C", str(layout), "-cf", str(partial), *entries], check=True)
    os.replace(partial, output)
    stamp.write_text(layout.name)
    return output


def manifest_digests(layout: Path) -> dict[str, str]:
    """Image name -> manifest digest, as Pods report it in status.containerStatuses[].imageID."""
    data: dict[str, str] = json.loads((layout / "images.json").read_text())
    return data


def digests(layout: Path) -> set[str]:
    """Every manifest and config digest of the lab's images: a Pod's imageID names one of them
    (the manifest when containerd resolved the tag, the config when it only had the image)."""
    found = set()
    for digest in manifest_digests(layout).values():
        found.add(digest)
        manifest = json.loads(
            (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()
        )
        found.add(manifest["config"]["digest"])
    return found
