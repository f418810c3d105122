"""Pinned versions of everything the lab builds; a bump here changes the cache keys."""

from __future__ import annotations

# One Kubernetes minor for the whole lab: kube-apiserver, kube-controller-manager and kubectl
# are built from k8s.io/kubernetes at this version (lab/controlplane/go.mod must match).
KUBERNETES = "v1.37.2"
# Storage behind kube-apiserver: kine with SQLite, as single-node k3s runs it. It emulates
# etcd 3.6 and supports watch progress, unlike Debian bookworm's etcd 3.4.23.
KINE = "v0.17.5"
# What the k3s/rke2 stand-ins report for `--version`.
K3S_STANDIN = "v1.37.2+k3s1"
RKE2_STANDIN = "v1.37.2+rke2r1"
# Argo CD built from the Go module proxy, one wrapper module per release (lab/argocd/<version>/
# go.mod must match); the lab runs the Pods of both. ARGOCD is the release the lab site and the
# site default pin; ARGOCD_PREVIOUS is the one the upgrade test converges on before raising the
# pin (tests/lab/test_argocd_upgrade.py). Each build costs ≈ 6.5 min on a cold machine.
ARGOCD = "v3.5.8"
ARGOCD_PREVIOUS = "v3.5.1"
ARGOCD_BUILDS = (ARGOCD_PREVIOUS, ARGOCD)
# CoreDNS of the k3s stand-in's node, built from github.com/coredns/coredns (no wrapper needed).
COREDNS = "v1.15.0"
# k3s's packaged Ingress controller, built through lab/traefik/go.mod (must match).
TRAEFIK = "v3.6.12"
# The hosts' root filesystem.
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
ROOTFS_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "iproute2",
    "sudo",
    "curl",
    "ca-certificates",
    "procps",
    "openssl",
    # A node (the argocd host): Debian's runtime, as the lab's Pods need it on cgroup v1.
    "containerd",
    "runc",
    "containernetworking-plugins",
    "iptables",
    "conntrack",
    # The edge host: the site's TLS proxy, Git server and registry mirror.
    "caddy",
    "nginx-light",
    "fcgiwrap",
    "git",
    "docker-registry",
)
# Installed in the shared rootfs but started only on the host that needs them.
PER_HOST_SERVICES = (
    "containerd.service",
    "caddy.service",
    "nginx.service",
    "fcgiwrap.service",
    "fcgiwrap.socket",
    "docker-registry.service",
)
# The base of the images the lab assembles (Argo CD, Redis, ...): what the real argocd image
# carries for repo-server's work (git, ssh client, gpg), tini as its entrypoint, and Redis.
IMAGE_PACKAGES = (
    "ca-certificates",
    "git",
    "openssh-client",
    "gnupg",
    "tini",
    "redis-server",
)
# The images the lab assembles, under the names Argo CD's manifest and k3s use.
REDIS_IMAGE = "public.ecr.aws/docker/library/redis:8.2.3-alpine"
# The Dex names of ARGOCD_PREVIOUS's and ARGOCD's manifests (v2.45.0, v2.45.1): one image under both.
DEX_IMAGES = ("ghcr.io/dexidp/dex:v2.45.0", "ghcr.io/dexidp/dex:v2.45.1")
# The Dex inside the lab's DEX_IMAGES: the only v2 the Go module proxy serves (lab/dex/go.mod).
DEX = "v2.13.0"


def argocd_image(version: str) -> str:
    """The image name Argo CD's manifest of ``version`` runs."""
    return f"quay.io/argoproj/argocd:{version}"


ARGOCD_IMAGE = argocd_image(ARGOCD)
PAUSE_IMAGE = "docker.io/rancher/mirrored-pause:3.6"
COREDNS_IMAGE = "docker.io/rancher/mirrored-coredns-coredns:1.15.0"
TRAEFIK_IMAGE = "docker.io/rancher/mirrored-library-traefik:3.6.12"
