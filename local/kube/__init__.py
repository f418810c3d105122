"""The Kubernetes side of the local phase: kube client, port-forward, argocd-manager, Secrets."""
