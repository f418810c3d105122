"""pyinfra inventory of the local lab site, built from sites/lab/ each time it loads."""

from pathlib import Path

from tirosh.inventory import load_groups

_groups = load_groups(Path(__file__).stem)
k3s = _groups["k3s"]
argocd = _groups["argocd"]
rke2 = _groups["rke2"]
