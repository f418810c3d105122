"""Argo CD's bundled Dex beside the loopback harness: the lab's Dex v2.13.0 run with the
configuration Argo CD v3.5.8 generates from argocd-cm's ``dex.config`` and argocd-secret
(``argocd-dex gendexcfg``, the code its dex-server Pod's ``argocd-dex rundex`` runs), on the
ports the harness gave argocd-server's ``--dex-server`` instead of the Pod's fixed 5556-5558.
v2.13.0 reads its frontend from ``./web`` (as the lab's dex image lays it out).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from lab import build, images, versions
from lab.argocd_harness import Process, free_port, wait_http


@contextmanager
def dex_server(tmp: Path, kubeconfig: Path, namespace: str, port: int) -> Iterator[Path]:
    """Dex at ``http://127.0.0.1:<port>`` from the cluster's settings; yields its log file."""
    tmp.mkdir(parents=True, exist_ok=True)
    bindir = tmp / "bin"
    bindir.mkdir(exist_ok=True)
    for name, target in (("argocd-dex", build.argocd()), ("dex", build.dex())):
        if not (bindir / name).exists():
            (bindir / name).symlink_to(target)
    env = dict(os.environ, PATH=f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    generated = tmp / "dex.yaml"
    generated.touch(mode=0o600)  # it holds the Argo CD client's secret
    subprocess.run(
        [
            str(bindir / "argocd-dex"),
            "gendexcfg",
            "--disable-tls",
            "--kubeconfig",
            str(kubeconfig),
            "--namespace",
            namespace,
            "--out",
            str(generated),
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    config = yaml.safe_load(generated.read_text())
    config["web"] = {"http": f"127.0.0.1:{port}"}
    config["grpc"] = {"addr": f"127.0.0.1:{free_port()}"}
    config["telemetry"] = {"http": f"127.0.0.1:{free_port()}"}
    generated.write_text(yaml.safe_dump(config))
    work = tmp / "work"
    work.mkdir(exist_ok=True)
    module = images._module_source(
        build.DEX_MODULE_DIR, f"github.com/dexidp/dex@{versions.DEX}+incompatible"
    )
    if not (work / "web").exists():
        (work / "web").symlink_to(module / "web")
    process = Process([str(bindir / "dex"), "serve", str(generated)], tmp / "dex.log", env, work)
    try:
        wait_http(f"http://127.0.0.1:{port}/api/dex/.well-known/openid-configuration", process)
        yield process.log
    finally:
        process.stop()
