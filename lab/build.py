"""Build the lab's control-plane binaries from Go modules into a cache keyed by pinned versions."""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from lab import config, versions

MODULE_DIR = Path(__file__).resolve().parent / "controlplane"
# One wrapper module per Argo CD release: lab/argocd/<version>/ (go.mod, go.sum, and the
# release's own cmd/main.go, which differs between releases).
ARGOCD_MODULES_DIR = Path(__file__).resolve().parent / "argocd"
NODE_MODULE_DIR = Path(__file__).resolve().parent / "node"
TRAEFIK_MODULE_DIR = Path(__file__).resolve().parent / "traefik"
DEX_MODULE_DIR = Path(__file__).resolve().parent / "dex"
STANDIN_PACKAGE = "./cmd/k3s-standin"
# What the Go tool and debootstrap print (881 lines of `go: downloading` on a cold machine) goes
# to one log per part here, whose path a failure names.
LOG_DIR = config.CACHE_DIR / "logs"


class BuildError(RuntimeError):
    """A step of the lab build failed; the message names its log."""


def log_path(name: str) -> Path:
    return LOG_DIR / f"{name}.log"


def run_logged(
    command: list[str],
    log: Path,
    what: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> None:
    """Run ``command`` with its output appended to ``log``; BuildError names the log (and
    quotes its last lines) when it fails."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as out:
        out.write(f"$ {shlex.join(command)}\n")
        out.flush()
        result = subprocess.run(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env=env,
        )
    if result.returncode != 0:
        # The error is at the end; the download chatter before it stays in the log only.
        lines = log.read_text(errors="replace").splitlines()
        tail = [line for line in lines if not line.startswith("go: downloading ")][-12:]
        quoted = "".join(f"\n    {line}" for line in tail)
        raise BuildError(f"{what} failed (exit {result.returncode}); full output: {log}{quoted}")


def fresh_log(name: str) -> Path:
    """The part's log, emptied: it holds the output of this build only."""
    log = log_path(name)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    return log


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
    package: str,
    output: Path,
    ldflags: str,
    log: Path,
    module: Path = MODULE_DIR,
    cgo: str = "1",
) -> None:
    env = dict(os.environ, CGO_ENABLED=os.environ.get("CGO_ENABLED", cgo))
    cmd = ["go", "build", "-trimpath", "-ldflags", ldflags, "-o", str(output), package]
    run_logged(cmd, log, f"go build {package} (in {module.name}/)", cwd=module, env=env)


def argocd_module(version: str = versions.ARGOCD) -> Path:
    """The wrapper module that builds Argo CD ``version`` (lab/argocd/<version>/)."""
    module = ARGOCD_MODULES_DIR / version
    if not (module / "go.mod").is_file():
        raise BuildError(f"no wrapper module for Argo CD {version} in {ARGOCD_MODULES_DIR}")
    return module


def _argocd_ldflags(version: str) -> str:
    # The release's Makefile sets the same variable; -s -w as its images strip the binary.
    # The variable takes the version without its "v": Argo CD prepends one,
    # and "vv3.5.1" breaks the API's own user-agent check (every REST call answered 400
    # "could not parse version from user-agent: argocd-client/vv3.5.1+unknown").
    return f"-s -w -X github.com/argoproj/argo-cd/v3/common.version={version.removeprefix('v')}"


def argocd_key(version: str = versions.ARGOCD) -> str:
    module = argocd_module(version)
    return _key(module / "go.mod", module / "go.sum", module / "main.go", _argocd_ldflags(version))


def argocd(version: str = versions.ARGOCD) -> Path:
    """The multi-call argocd binary of ``version`` (argocd-server, -repo-server, ... by argv[0])."""

    def build(output: Path, log: Path) -> None:
        module = argocd_module(version)
        _go_build(".", output, _argocd_ldflags(version), log, module, cgo="0")

    return _cached_binary("argocd", argocd_key(version), build, f"argocd-{version}")


def cached(kind: str, key: str) -> bool:
    """Whether CACHE_DIR holds the finished build ``kind``/``key`` (builds are renamed into
    place whole, so the directory exists only once everything in it is done)."""
    return (config.CACHE_DIR / kind / key).is_dir()


def _cached_binary(
    kind: str, key: str, build: Callable[[Path, Path], None], log_name: str | None = None
) -> Path:
    """CACHE_DIR/<kind>/<key>/<kind>, built by build(output, log) on first use, atomically: a
    failed or interrupted build leaves nothing that looks cached."""
    final = config.CACHE_DIR / kind / key
    binary = final / kind
    if binary.is_file():
        return binary
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{kind}-", dir=final.parent))
    try:
        build(staging / kind, fresh_log(log_name or kind))
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
    log = fresh_log(kind)
    try:
        for name, (package, ldflags) in build.items():
            _go_build(package, staging / name, ldflags, log, module)
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

    def build(output: Path, log: Path) -> None:
        package = f"github.com/coredns/coredns@{versions.COREDNS}"
        env = dict(os.environ, CGO_ENABLED="0", GOBIN=str(output.parent), GOFLAGS="-trimpath")
        run_logged(
            ["go", "install", "-ldflags", "-s -w", package], log, f"go install {package}", env=env
        )

    return _cached_binary("coredns", coredns_key(), build)


def _traefik_ldflags() -> str:
    pkg = "github.com/traefik/traefik/v3/pkg/version"
    return f"-s -w -X {pkg}.Version={versions.TRAEFIK}"


def traefik_key() -> str:
    module = TRAEFIK_MODULE_DIR
    return _key(module / "go.mod", module / "go.sum", _traefik_ldflags())


def traefik() -> Path:
    """Traefik built through the wrapper module lab/traefik (its forks' replaces repeated)."""

    def build(output: Path, log: Path) -> None:
        package = "github.com/traefik/traefik/v3/cmd/traefik"
        _go_build(package, output, _traefik_ldflags(), log, TRAEFIK_MODULE_DIR, cgo="0")

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

    def build(output: Path, log: Path) -> None:
        package = "github.com/dexidp/dex/cmd/dex"
        _go_build(package, output, _dex_ldflags(), log, DEX_MODULE_DIR, cgo="1")

    return _cached_binary("dex", dex_key(), build)


def standin() -> Path:
    """The k3s/rke2 stand-in binary (a test double of the k3s binary alone)."""
    built = _build_dir("standin", standin_key(), {"k3s": (STANDIN_PACKAGE, _standin_ldflags())})
    return built / "k3s"


def controlplane_cached() -> bool:
    return cached("controlplane", controlplane_key())


def standin_cached() -> bool:
    return cached("standin", standin_key())


def node_cached() -> bool:
    return cached("node", node_key())


def argocd_cached(version: str = versions.ARGOCD) -> bool:
    return cached("argocd", argocd_key(version))


def coredns_cached() -> bool:
    return cached("coredns", coredns_key())


def dex_cached() -> bool:
    return cached("dex", dex_key())


def traefik_cached() -> bool:
    return cached("traefik", traefik_key())
