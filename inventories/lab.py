"""pyinfra inventory of the local lab site, built from sites/lab/ each time it loads."""

from pathlib import Path

from tirosh.inventory import load_groups

_groups = load_groups(Path(__file__).stem)
# The VM that runs k3s and Argo CD, and the workload cluster's VM (tirosh/inventory.py).
management = _groups["management"]
rke2 = _groups["rke2"]
