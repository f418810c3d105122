"""Host-free logic of tirosh-infra: site model, rendering, kubeconfig."""
