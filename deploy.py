"""Converge a site's management plane: k3s on its VM, the operator's kubeconfigs, then Argo CD.

pyinfra inventories/<site>.py deploy.py [--dry [--diff]]
"""

from pyinfra import host, local

from operations.util.connection import bound_dead_link, dead_after

# A dropped link fails the run within TIROSH_SSH_DEAD_AFTER seconds instead of hanging.
bound_dead_link(host, dead_after())

local.include("deploys/k3s.py")
local.include("deploys/kubeconfig.py")
local.include("deploys/argocd.py")
