"""Converge a site's management plane: k3s on its VM, the operator's kubeconfigs, then Argo CD.

pyinfra inventories/<site>.py deploy.py [--dry [--diff]]
"""

from pyinfra import host

from deploys import argocd, k3s, kubeconfig, local_phase, prepare_run

prepare_run(host)

k3s.for_host(host)
kubeconfig.for_host(host)
argocd.for_host(host)
local_phase.for_host(host)
