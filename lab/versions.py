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
# Argo CD built from the Go module proxy (lab/argocd/go.mod must match); the lab runs its Pods.
ARGOCD = "v3.5.1"
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
DEX_IMAGE = "ghcr.io/dexidp/dex:v2.45.0"
# The Dex inside the lab's DEX_IMAGE: the only v2 the Go module proxy serves (lab/dex/go.mod).
DEX = "v2.13.0"
ARGOCD_IMAGE = f"quay.io/argoproj/argocd:{ARGOCD}"
PAUSE_IMAGE = "docker.io/rancher/mirrored-pause:3.6"
COREDNS_IMAGE = "docker.io/rancher/mirrored-coredns-coredns:1.15.0"
TRAEFIK_IMAGE = "docker.io/rancher/mirrored-library-traefik:3.6.12"
