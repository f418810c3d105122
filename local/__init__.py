"""The operator's side: the local phase and the commands an operator runs from their machine.

| module | holds |
|---|---|
| ``cli`` | the one frame of every command: arguments, the site loaded once, one line per failure |
| ``commands`` | each command, one function, named as its Make target (``python -m local ...``) |
| ``phase`` | the deploy's local phase: ``plan`` (what would change) and ``apply`` |
| ``argocd/`` | Argo CD: the REST API client, session and login, password, initial Secret, cluster and repository registration, SSH known hosts, status and its API check, the doctor |
| ``kube/`` | Kubernetes: the kube client (keys in memory), port-forward, ``argocd-manager`` on a workload cluster, the site's registered Secrets |
| ``remote`` | the management VM over SSH (the deploy's own connection) |
"""
