"""Build the lab's control-plane binaries from Go modules into a cache keyed by pinned versions."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from lab import config, versions

MODULE_DIR = Path(__file__).resolve().parent / "controlplane"
ARGOCD_MODULE_DIR = Path(__file__).resolve().parent / "argocd"
NODE_MODULE_DIR = Path(__file__).resolve().parent / "node"
TRAEFIK_MODULE_DIR = Path(__file__).resolve().parent / "traefik"
DEX_MODULE_DIR = Path(__file__).resolve().parent / "dex"
STANDIN_PACKAGE = "./cmd/k3s-standin"
# Binary name in the cache -> Go package that builds it.
CONTROL_PLANE = {
    "kine": "github.com/k3s-io/kine",
    "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
    "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
    "kubectl": "k8s.io/kubernetes/cmd/kubectl",
}
# What makes the k3s stand-in a node (Pods start): built from lab/node, a wrapper module with
# the control plane's pins, so a warm control-plane build shares most packages. `pause` is the
# sandbox image's program.
NODE = {
    "kubelet": "k8s.io/kubernetes/cmd/kubelet",
    "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
    "kube-proxy": "k8s.io/kubernetes/cmd/kube-proxy",
    "pause": "./cmd/pause",
}


def _kube_ldflags() -> str:
    # Without the -X, /version reports v0.0.0-master; k3s sets the same variables. -s -w: no
    # symbol table or DWARF, as release builds (kube-apiserver 121 MB instead of 173 MB, and a
    # shorter link: 19 s instead of 25-34 s measured on a warm cache).
    minor = versions.KUBERNETES.split(".")[1]
    pkg = "k8s.io/component-base/version"
    return " ".join(
        [
            "-s -w",
            f"-X {pkg}.gitVersion={versions.KUBERNETES}",
            f"-X {pkg}.gitMajor=1",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
        ]
    )


def _standin_ldflags() -> str:
    return (
        f"-s -w -X main.version={versions.K3S_STANDIN} -X main.rke2Version={versions.RKE2_STANDIN}"
    )


def _key(*parts: str | Path) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = part.read_bytes() if isinstance(part, Path) else part.encode()
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()[:16]


def controlplane_key() -> str:
    return _key(
        MODULE_DIR / "go.mod",
        MODULE_DIR / "go.sum",
        versions.KUBERNETES,
        versions.KINE,
        _kube_ldflags(),
    )


def node_key() -> str:
    return _key(
        NODE_MODULE_DIR / "go.mod",
        NODE_MODULE_DIR / "go.sum",
        versions.KUBERNETES,
        _kube_ldflags(),
        " ".join(NODE.values()),
        *sorted((NODE_MODULE_DIR / "cmd" / "pause").glob("*.go")),
    )


def standin_key() -> str:
    source_dir = MODULE_DIR / "cmd" / "k3s-standin"
    # The packaged addon manifests (CoreDNS, Traefik) are embedded in the binary.
    sources = sorted([*source_dir.glob("*.go"), *source_dir.glob("manifests/*.yaml")])
    return _key(MODULE_DIR / "go.mod", MODULE_DIR / "go.sum", _standin_ldflags(), *sources)


def _go_build(
    package: str, output: Path, ldflags: str, module: Path = MODULE_DIR, cgo: str = "1"
) -> None:
    env = dict(os.environ, CGO_ENABLED=os.environ.get("CGO_ENABLED", cgo))
    cmd = ["go", "build", "-trimpath", "-ldflags", ldflags, "-o", str(output), package]
    print(f"lab: go build {package} (in {module.name}/)", file=sys.stderr, flush=True)
    subprocess.run(cmd, cwd=module, env=env, check=True)


def _argocd_ldflags() -> str:
    # The release's Makefile sets the same variable; -s -w as its images strip the binary.
    # The variable takes the version without its "v": Argo CD prepends one,
    # and "vv3.5.1" breaks the API's own user-agent check (every REST call answered 400
    # "could not parse version from user-agent: argocd-client/vv3.5.1+unknown").
    version = versions.ARGOCD.removeprefix("v")
    return f"-s -w -X github.com/argoproj/argo-cd/v3/common.version={version}"


def argocd_key() -> str:
    module = ARGOCD_MODULE_DIR
    return _key(module / "go.mod", module / "go.sum", module / "main.go", _argocd_ldflags())


def argocd() -> Path:
    """The multi-call argocd binary of versions.ARGOCD (argocd-server, -repo-server, ... by argv[0])."""

    def build(output: Path) -> None:
        _go_build(".", output, _argocd_ldflags(), ARGOCD_MODULE_DIR, cgo="0")

    return _cached_binary("argocd", argocd_key(), build)


def _cached_binary(kind: str, key: str, build: Callable[[Path], None]) -> Path:
    """CACHE_DIR/<kind>/<key>/<kind>, built by build(output) on first use, atomically: a failed
    or interrupted build leaves nothing that looks cached."""
    final = config.CACHE_DIR / kind / key
    binary = final / kind
    if binary.is_file():
        return binary
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{kind}-", dir=final.parent))
    try:
        build(staging / kind)
        staging.chmod(0o755)
        os.rename(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return binary


def _build_dir(
    kind: str, key: str, build: dict[str, tuple[str, str]], module: Path = MODULE_DIR
) -> Path:
    """Build every binary into CACHE_DIR/<kind>/<key>, atomically: half a build is never cached."""
    final = config.CACHE_DIR / kind / key
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=final.parent))
    try:
        for name, (package, ldflags) in build.items():
            _go_build(package, staging / name, ldflags, module)
        staging.chmod(0o755)
        os.rename(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def controlplane() -> Path:
    """The directory holding kine, kube-apiserver, kube-controller-manager and kubectl."""
    ldflags = _kube_ldflags()
    return _build_dir(
        "controlplane",
        controlplane_key(),
        {name: (pkg, ldflags) for name, pkg in CONTROL_PLANE.items()},
    )


def node() -> Path:
    """The directory holding kubelet, kube-scheduler, kube-proxy and pause."""
    ldflags = _kube_ldflags()
    build = {name: (pkg, ldflags) for name, pkg in NODE.items()}
    return _build_dir("node", node_key(), build, NODE_MODULE_DIR)


def coredns_key() -> str:
    return _key(versions.COREDNS)


def coredns() -> Path:
    """CoreDNS built from its own module at versions.COREDNS (it needs no wrapper: no replaces)."""

    def build(output: Path) -> None:
        package = f"github.com/coredns/coredns@{versions.COREDNS}"
        print(f"lab: go install {package}", file=sys.stderr, flush=True)
        env = dict(os.environ, CGO_ENABLED="0", GOBIN=str(output.parent), GOFLAGS="-trimpath")
        subprocess.run(["go", "install", "-ldflags", "-s -w", package], env=env, check=True)

    return _cached_binary("coredns", coredns_key(), build)


def _traefik_ldflags() -> str:
    pkg = "github.com/traefik/traefik/v3/pkg/version"
    return f"-s -w -X {pkg}.Version={versions.TRAEFIK}"


def traefik_key() -> str:
    module = TRAEFIK_MODULE_DIR
    return _key(module / "go.mod", module / "go.sum", _traefik_ldflags())


def traefik() -> Path:
    """Traefik built through the wrapper module lab/traefik (its forks' replaces repeated)."""

    def build(output: Path) -> None:
        package = "github.com/traefik/traefik/v3/cmd/traefik"
        _go_build(package, output, _traefik_ldflags(), TRAEFIK_MODULE_DIR, cgo="0")

    return _cached_binary("traefik", traefik_key(), build)


def _dex_ldflags() -> str:
    return f"-s -w -X github.com/dexidp/dex/version.Version={versions.DEX}"


def dex_key() -> str:
    module = DEX_MODULE_DIR
    sources = sorted(module.glob("crdb/**/*"))
    return _key(
        module / "go.mod", module / "go.sum", _dex_ldflags(), *(p for p in sources if p.is_file())
    )


def dex() -> Path:
    """Dex built through the wrapper module lab/dex (the only Dex v2 the proxy serves; see its
    go.mod). cgo: its SQLite storage needs it, and the image base has the same glibc."""

    def build(output: Path) -> None:
        _go_build("github.com/dexidp/dex/cmd/dex", output, _dex_ldflags(), DEX_MODULE_DIR, cgo="1")

    return _cached_binary("dex", dex_key(), build)


def standin() -> Path:
    """The k3s/rke2 stand-in binary (a test double of the k3s binary alone)."""
    built = _build_dir("standin", standin_key(), {"k3s": (STANDIN_PACKAGE, _standin_ldflags())})
    return built / "k3s"
