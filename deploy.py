"""Converge a site's management plane: k3s on its VM, the operator's kubeconfigs, then Argo CD.

pyinfra inventories/<site>.py deploy.py [--dry [--diff]]
"""

from pyinfra import host

from deploys import argocd, k3s, kubeconfig
from operations.util.connection import bound_dead_link, dead_after

# A dropped link fails the run within TIROSH_SSH_DEAD_AFTER seconds instead of hanging.
bound_dead_link(host, dead_after())

k3s.for_host(host)
kubeconfig.for_host(host)
argocd.for_host(host)
