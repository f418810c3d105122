"""Where the lab keeps its caches and state, and the addresses of its hosts."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# Built artifacts (Go binaries, the root filesystem) outlive a checkout: they are keyed by
# pinned versions and shared by every clone on this machine, CI's included.
CACHE_DIR = Path(os.environ.get("TIROSH_LAB_CACHE", "/var/cache/tirosh-lab"))
# Per-boot host state: overlay upper layers, pid files.
STATE_DIR = Path(os.environ.get("TIROSH_LAB_STATE", "/var/lib/tirosh-lab"))
# Per-checkout files the deploy reads: SSH key, known_hosts, air-gapped k3s artifacts.
LOCAL_DIR = REPO_ROOT / ".lab"
SSH_KEY = LOCAL_DIR / "ssh" / "id_ed25519"
KNOWN_HOSTS = LOCAL_DIR / "ssh" / "known_hosts"
# `ssh -F .lab/ssh/config argocd` and testinfra's ssh backend use this.
SSH_CONFIG = LOCAL_DIR / "ssh" / "config"
K3S_ARTIFACTS = LOCAL_DIR / "artifacts" / "k3s"

BRIDGE = "tlab0"
# TEST-NET-2: documentation range, unused by this machine (its own interface is 192.0.2.0/24).
NETWORK_PREFIX = 24
GATEWAY = "198.51.100.1"
LOGIN_USER = "tirosh"
# Inside each host, the control-plane binaries are bind-mounted read-only here.
HOST_BIN_DIR = "/opt/tirosh-lab/bin"
# On a host that runs Pods: kubelet, kube-scheduler, kube-proxy, pause, bind-mounted read-only.
HOST_NODE_DIR = "/opt/tirosh-lab/node"


@dataclass(frozen=True)
class LabHost:
    """One booted host of the lab."""

    name: str
    address: str


HOSTS = (
    LabHost("argocd", "198.51.100.10"),  # the site's management VM: the deploy converges it
    LabHost("rke2-gpu", "198.51.100.11"),  # a workload cluster's server node, pre-provisioned
    # The site's network services: TLS proxy (Caddy), Git server, registry mirror.
    LabHost("edge", "198.51.100.12"),
)
# The host that runs Pods (the k3s stand-in is a node there); rke2-gpu stays API-only.
NODE_HOST = "argocd"
EDGE_HOST = "edge"


def host(name: str) -> LabHost:
    for candidate in HOSTS:
        if candidate.name == name:
            return candidate
    raise KeyError(f"no lab host named {name!r}; lab hosts: {', '.join(h.name for h in HOSTS)}")
