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
)
