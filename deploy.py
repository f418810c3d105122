"""Converge a site's management plane: k3s on its VM, the operator's kubeconfigs, then Argo CD.

pyinfra inventories/<site>.py deploy.py [--dry [--diff]]
"""

from pyinfra import local

local.include("deploys/k3s.py")
local.include("deploys/kubeconfig.py")
local.include("deploys/argocd.py")
