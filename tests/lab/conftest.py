"""Lab tests share one booted lab and one operator machine, and run in the deploy's order."""

from __future__ import annotations

import pytest
import yaml

from tests.lab.operator import Operator

# Later modules build on what earlier ones deployed (a fresh VM first, then Argo CD on it).
MODULE_ORDER = (
    "test_lab",
    "test_k3s_deploy",
    "test_argocd_deploy",
    "test_argocd_running",
    "test_argocd_upgrade",  # back on the lab site's release, every Pod Ready, when it ends
    "test_git_server",  # it also clones from a Pod of Argo CD
    "test_local_phase",  # needs Argo CD running and the Git server
    "test_gitops_loop",  # the same, and leaves Argo CD as test_local_phase does
    "test_access_deploy",  # access.toml through the deploy; gives its keys up afterwards
    "test_argocd_status",
    "test_operator_checks",
    "test_faults",  # last: it cuts the VM's link mid-deploy
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        module = item.path.stem
        return MODULE_ORDER.index(module) if module in MODULE_ORDER else -1

    items.sort(key=rank)  # stable: the order inside a module is kept


@pytest.fixture(scope="session")
def operator(lab: object, tmp_path_factory: pytest.TempPathFactory) -> Operator:
    """The operator's machine: a HOME whose ~/.kube/config already has a context of its own."""
    home = tmp_path_factory.mktemp("operator-home")
    kube = home / ".kube"
    kube.mkdir(mode=0o700)
    (kube / "config").write_text(yaml.safe_dump(FOREIGN_KUBECONFIG))
    (kube / "config").chmod(0o600)
    return Operator(home=home)


FOREIGN_KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "current-context": "work",
    "clusters": [{"name": "work", "cluster": {"server": "https://127.0.0.1:1"}}],
    "users": [{"name": "work", "user": {"token": "not-a-real-token"}}],
    "contexts": [{"name": "work", "context": {"cluster": "work", "user": "work"}}],
}
