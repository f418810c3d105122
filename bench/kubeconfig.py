"""How long the kubeconfig merge takes on a large operator kubeconfig (C YAML loader).

Usage: ``.venv/bin/python -m bench.kubeconfig [ENTRIES]`` builds a kubeconfig of ENTRIES
clusters/users/contexts (default 1000, about 4.6 MB, as a long-lived ~/.kube/config of a
platform team gets) with fake base64 data in a temp directory, then prints the seconds for a
load, a merge into it (lock, re-read, backup, atomic write) and a second merge (no change).
"""

from __future__ import annotations

import base64
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tirosh import kubeconfig


def big_config(entries: int) -> dict[str, Any]:
    blob = base64.b64encode(b"fake-certificate-data " * 50).decode()  # ~1.5 KB each
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": f"c{i}",
                "cluster": {"server": f"https://h{i}:6443", "certificate-authority-data": blob},
            }
            for i in range(entries)
        ],
        "users": [
            {"name": f"c{i}", "user": {"client-certificate-data": blob, "client-key-data": blob}}
            for i in range(entries)
        ],
        "contexts": [
            {"name": f"c{i}", "context": {"cluster": f"c{i}", "user": f"c{i}"}}
            for i in range(entries)
        ],
        "current-context": "c0",
    }


def incoming() -> dict[str, Any]:
    single = {
        "apiVersion": "v1",
        "clusters": [{"name": "default", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "default", "user": {"client-key-data": "ZmFrZQ=="}}],
        "contexts": [{"name": "default", "context": {"cluster": "default", "user": "default"}}],
    }
    return kubeconfig.rename(single, "bench/k3s", "https://k3s.bench.example:6443")


def timed(label: str, action: Any) -> None:
    started = time.perf_counter()
    action()
    print(f"{label:<40} {time.perf_counter() - started:7.3f} s")


def main(argv: list[str]) -> int:
    entries = int(argv[0]) if argv else 1000
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory, "config")
        path.write_text(kubeconfig.dump(big_config(entries)))
        size = path.stat().st_size / 1e6
        print(f"kubeconfig: {entries} clusters/users/contexts, {size:.1f} MB")
        timed("load", lambda: kubeconfig.load(path))
        timed(
            "merge a context (lock, backup, write)",
            lambda: kubeconfig.merge_into_file(path, incoming()),
        )
        timed("merge again (no change)", lambda: kubeconfig.merge_into_file(path, incoming()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
