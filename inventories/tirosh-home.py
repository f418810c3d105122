"""pyinfra inventory of the tirosh-home site, built from sites/tirosh-home/ each time it loads."""

from pathlib import Path

from tirosh.inventory import load_groups

_groups = load_groups(Path(__file__).stem)
k3s = _groups["k3s"]
argocd = _groups["argocd"]
rke2 = _groups["rke2"]
