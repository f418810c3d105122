"""Argo CD on the lab's management cluster: install, drift, upgrade, settings, Ingress.

Runs after test_k3s_deploy (see conftest.py): the full deploy has installed Argo CD v3.5.8.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab import config
from tests.lab.operator import PYINFRA, Operator, changed_operations
from tirosh import argocd

pytestmark = pytest.mark.lab
MANIFESTS = config.REPO_ROOT / "manifests" / "argocd"
CONTEXT = ("--context", "lab/k3s")
INSTALL_OP = "Install Argo CD v3.5.8 (server-side apply)"


def kubectl_json(operator: Operator, *args: str) -> Any:
    return json.loads(operator.kubectl(*CONTEXT, *args, "-o", "json").stdout)


@pytest.fixture
def site_copy(operator: Operator, tmp_path: Path) -> Callable[[dict[str, object]], Operator]:
    """An operator whose lab site has these argocd/vars.yml values changed."""

    def edit(values: dict[str, object]) -> Operator:
        sites = tmp_path / "sites"
        if not sites.exists():
            shutil.copytree(config.REPO_ROOT / "sites", sites)
        vars_file = sites / "lab" / "argocd" / "vars.yml"
        data = yaml.safe_load(vars_file.read_text())
        data.update(values)
        vars_file.write_text(yaml.safe_dump(data))
        return Operator(home=operator.home, env={"TIROSH_SITES_DIR": str(sites)})

    return edit


def pin(version: str) -> dict[str, object]:
    path = MANIFESTS / f"install-{version}.yaml"
    return {
        "argocd_version": version,
        "argocd_manifest_file": str(path),
        "argocd_manifest_sha256": argocd.read_manifest(path).sha256,
    }


def test_every_manifest_object_exists_under_the_deploys_field_manager(operator: Operator) -> None:
    manifest = argocd.read_manifest(MANIFESTS / "install-v3.5.8.yaml")
    for kind in sorted({o.kind for o in manifest.objects}):
        listing = kubectl_json(
            operator, "get", argocd.RESOURCES[kind], "-n", "argocd", "--show-managed-fields"
        )
        owned = {
            item["metadata"]["name"]
            for item in listing["items"]
            if any(
                f["manager"] == argocd.FIELD_MANAGER and f["operation"] == "Apply"
                for f in item["metadata"].get("managedFields", [])
            )
        }
        expected = {o.name for o in manifest.objects if o.kind == kind}
        assert expected <= owned, (
            f"{kind}: not applied by {argocd.FIELD_MANAGER}: {expected - owned}"
        )
    for crd in ("applications", "applicationsets", "appprojects"):
        operator.kubectl(*CONTEXT, "wait", "--for=condition=Established", f"crd/{crd}.argoproj.io")


def test_a_rerun_changes_nothing(operator: Operator) -> None:
    assert changed_operations(operator.plan(deploy_file="deploys/argocd.py")) == []


@pytest.mark.parametrize(
    "edit_by_hand",
    [
        ("-n", "argocd", "delete", "configmap", "argocd-rbac-cm"),
        ("-n", "argocd", "scale", "statefulset", "argocd-application-controller", "--replicas=2"),
        ("-n", "argocd", "set", "image", "deployment/argocd-repo-server", "argocd-repo-server=x:1"),
        ("delete", "clusterrolebinding", "argocd-server"),
    ],
    ids=["deleted-configmap", "scaled-statefulset", "changed-image", "deleted-cluster-object"],
)
def test_a_hand_edit_is_noticed_and_reverted(
    operator: Operator, edit_by_hand: tuple[str, ...]
) -> None:
    operator.kubectl(*CONTEXT, *edit_by_hand)
    assert changed_operations(operator.plan(deploy_file="deploys/argocd.py")) == [INSTALL_OP]
    operator.deploy(deploy_file="deploys/argocd.py")
    assert changed_operations(operator.plan(deploy_file="deploys/argocd.py")) == []
    controller = kubectl_json(
        operator, "-n", "argocd", "get", "statefulset", "argocd-application-controller"
    )
    assert controller["spec"]["replicas"] == 1
    repo_server = kubectl_json(operator, "-n", "argocd", "get", "deployment", "argocd-repo-server")
    assert repo_server["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":v3.5.8")
    operator.kubectl(*CONTEXT, "-n", "argocd", "get", "configmap", "argocd-rbac-cm")
    operator.kubectl(*CONTEXT, "get", "clusterrolebinding", "argocd-server")


def test_a_field_the_manifest_leaves_unset_is_not_drift(operator: Operator) -> None:
    # The Deployments set no replicas: scaling one is not a difference a re-apply would undo.
    operator.kubectl(
        *CONTEXT, "-n", "argocd", "scale", "deployment", "argocd-dex-server", "--replicas=2"
    )
    assert changed_operations(operator.plan(deploy_file="deploys/argocd.py")) == []
    operator.kubectl(
        *CONTEXT, "-n", "argocd", "scale", "deployment", "argocd-dex-server", "--replicas=1"
    )


def test_a_downgrade_is_refused_unless_forced(
    operator: Operator, site_copy: Callable[..., Operator]
) -> None:
    older = site_copy(pin("v3.4.7"))
    result = older.run(PYINFRA, "-y", "inventories/lab.py", "deploys/argocd.py", check=False)
    assert result.returncode != 0
    assert "refusing to downgrade Argo CD from v3.5.8 to v3.4.7" in result.stdout + result.stderr
    record = kubectl_json(operator, "-n", "argocd", "get", "configmap", argocd.RECORD_CONFIGMAP)
    assert record["data"]["version"] == "v3.5.8"


def test_a_downgrade_of_an_unrecorded_install_is_refused_too(
    operator: Operator, site_copy: Callable[..., Operator]
) -> None:
    # As if Argo CD had been installed by hand: no record, the running image tells the version.
    operator.kubectl(*CONTEXT, "-n", "argocd", "delete", "configmap", argocd.RECORD_CONFIGMAP)
    older = site_copy(pin("v3.4.7"))
    result = older.run(PYINFRA, "-y", "inventories/lab.py", "deploys/argocd.py", check=False)
    assert result.returncode != 0
    assert "refusing to downgrade Argo CD from v3.5.8 to v3.4.7" in result.stdout + result.stderr
    operator.deploy(deploy_file="deploys/argocd.py")
    assert changed_operations(operator.plan(deploy_file="deploys/argocd.py")) == []


def test_dry_run_on_a_changed_pin_lists_objects_and_changes_nothing(
    operator: Operator, site_copy: Callable[..., Operator]
) -> None:
    older = site_copy({**pin("v3.4.7"), "argocd_allow_downgrade": True})
    before = kubectl_json(operator, "-n", "argocd", "get", "deployment", "argocd-server")
    result = older.run(PYINFRA, "--dry", "inventories/lab.py", "deploys/argocd.py")
    output = result.stdout + result.stderr
    assert "Argo CD objects that would be created or changed" in output
    assert "Deployment/argocd-server" in output
    assert "CustomResourceDefinition/applicationsets.argoproj.io" in output
    after = kubectl_json(operator, "-n", "argocd", "get", "deployment", "argocd-server")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_downgrade_when_forced_then_upgrade_converge_without_manual_steps(
    operator: Operator, site_copy: Callable[..., Operator]
) -> None:
    def image() -> str:
        server = kubectl_json(operator, "-n", "argocd", "get", "deployment", "argocd-server")
        return server["spec"]["template"]["spec"]["containers"][0]["image"]

    site_copy({**pin("v3.4.7"), "argocd_allow_downgrade": True}).deploy(
        deploy_file="deploys/argocd.py"
    )
    assert image() == "quay.io/argoproj/argocd:v3.4.7"
    upgraded = site_copy(pin("v3.5.8"))
    upgraded.deploy(deploy_file="deploys/argocd.py")
    assert image() == "quay.io/argoproj/argocd:v3.5.8"
    assert changed_operations(upgraded.plan(deploy_file="deploys/argocd.py")) == []
    assert changed_operations(operator.plan(deploy_file="deploys/argocd.py")) == []
    _forced_rollback_of_the_controller(operator)


def _forced_rollback_of_the_controller(operator: Operator) -> None:
    """The lab has no v3.4.7 images, so the downgraded Pods never ran. Deployments replace theirs
    on the upgrade; an OrderedReady StatefulSet does not replace a Pod that never became Ready
    (Kubernetes' documented "forced rollback": delete it). Later tests need v3.5.8 running."""
    pod = kubectl_json(operator, "-n", "argocd", "get", "pod", "argocd-application-controller-0")
    if pod["spec"]["containers"][0]["image"] != "quay.io/argoproj/argocd:v3.5.8":
        operator.kubectl(
            *CONTEXT, "-n", "argocd", "delete", "pod", "argocd-application-controller-0"
        )
    operator.kubectl(
        *CONTEXT,
        "-n",
        "argocd",
        "rollout",
        "status",
        "statefulset/argocd-application-controller",
        "--timeout=300s",
    )


def test_ingress_follows_vars(operator: Operator, site_copy: Callable[..., Operator]) -> None:
    ingress = kubectl_json(operator, "-n", "argocd", "get", "ingress", "argocd-server")
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "traefik"
    rule = spec["rules"][0]
    assert rule["host"] == "gitops.lab.test"
    assert rule["http"]["paths"][0]["backend"]["service"] == {
        "name": "argocd-server",
        "port": {"number": 80},
    }
    assert "tls" not in spec

    site_copy(
        {"argocd_ingress_tls_enabled": True, "argocd_ingress_host": "argocd.lab.test"}
    ).deploy(deploy_file="deploys/argocd.py")
    spec = kubectl_json(operator, "-n", "argocd", "get", "ingress", "argocd-server")["spec"]
    assert spec["tls"] == [{"hosts": ["argocd.lab.test"], "secretName": "argocd-server-tls"}]
    assert spec["rules"][0]["host"] == "argocd.lab.test"

    site_copy({"argocd_ingress_enabled": False}).deploy(deploy_file="deploys/argocd.py")
    missing = operator.kubectl(
        *CONTEXT, "-n", "argocd", "get", "ingress", "argocd-server", check=False
    )
    assert "NotFound" in missing.stderr

    operator.deploy(deploy_file="deploys/argocd.py")
    assert changed_operations(operator.plan(deploy_file="deploys/argocd.py")) == []


def test_toggling_server_insecure_restarts_argocd_server_exactly_once(
    operator: Operator, site_copy: Callable[..., Operator]
) -> None:
    def server() -> Any:
        return kubectl_json(operator, "-n", "argocd", "get", "deployment", "argocd-server")

    def params() -> Any:
        return kubectl_json(operator, "-n", "argocd", "get", "configmap", "argocd-cmd-params-cm")

    generation = server()["metadata"]["generation"]
    secure = site_copy({"argocd_server_insecure": False})
    secure.deploy(deploy_file="deploys/argocd.py")
    after = server()
    assert after["metadata"]["generation"] == generation + 1
    annotations = after["spec"]["template"]["metadata"]["annotations"]
    assert annotations[argocd.SERVER_INSECURE_ANNOTATION] == "false"
    assert params()["data"]["server.insecure"] == "false"
    secure.deploy(deploy_file="deploys/argocd.py")
    assert server()["metadata"]["generation"] == generation + 1

    operator.deploy(deploy_file="deploys/argocd.py")
    assert server()["metadata"]["generation"] == generation + 2
    assert params()["data"]["server.insecure"] == "true"


def _port_forwards() -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "port-forward" in cmdline and "argocd-server" in cmdline:
            found.append(cmdline)
    return found


@pytest.fixture
def scaled_to_0(operator: Operator) -> Iterator[Callable[[str], None]]:
    """Scale an Argo CD Deployment to 0 for one test (the manifest sets no replicas, so the
    deploy leaves them alone), then back to 1 and ready."""
    scaled: list[str] = []

    def scale(name: str) -> None:
        operator.kubectl(*CONTEXT, "-n", "argocd", "scale", f"deployment/{name}", "--replicas=0")
        operator.kubectl(
            *CONTEXT,
            "-n",
            "argocd",
            "wait",
            "--for=delete",
            "pod",
            "-l",
            f"app.kubernetes.io/name={name}",
            "--timeout=120s",
        )
        scaled.append(name)

    yield scale
    for name in scaled:
        operator.kubectl(*CONTEXT, "-n", "argocd", "scale", f"deployment/{name}", "--replicas=1")
        operator.kubectl(
            *CONTEXT, "-n", "argocd", "rollout", "status", f"deployment/{name}", "--timeout=300s"
        )


def test_status_names_the_workloads_that_are_not_ready(
    operator: Operator, scaled_to_0: Callable[[str], None]
) -> None:
    scaled_to_0("argocd-dex-server")
    result = operator.run("make", "-s", "argocd/status", "SITE=lab", check=False)
    assert result.returncode != 0  # make turns the status's exit 1 into its own 2
    assert "Deployment argocd-dex-server: 0/0 ready  scaled to 0" in result.stdout
    assert "CRD applicationsets.argoproj.io: Established" in result.stdout
    assert "Ingress: gitops.lab.test" in result.stdout
    verdict = next(line for line in result.stdout.splitlines() if line.startswith("not healthy:"))
    assert "argocd-dex-server" in verdict and "argocd-server" not in verdict


def test_install_waits_for_the_rollout_until_its_timeout_then_reports(
    operator: Operator, scaled_to_0: Callable[[str], None]
) -> None:
    scaled_to_0("argocd-dex-server")
    started = time.monotonic()
    result = operator.run("make", "-s", "argocd/install", "SITE=lab", "ARGOCD_WAIT=4", check=False)
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert "waiting up to 4 s for the Argo CD rollout" in result.stdout
    assert "not healthy:" in result.stdout
    assert 4 <= elapsed < 60


def test_port_forward_without_a_server_pod_fails_clearly_and_leaves_nothing(
    operator: Operator, scaled_to_0: Callable[[str], None]
) -> None:
    scaled_to_0("argocd-server")
    result = operator.run("make", "-s", "argocd/port-forward", "SITE=lab", check=False)
    assert result.returncode != 0
    assert "no argocd-server pod is running in namespace argocd (context lab/k3s)" in result.stderr
    assert _port_forwards() == []


def test_objects_a_newer_manifest_drops_are_pruned(
    operator: Operator, site_copy: Callable[..., Operator], tmp_path: Path
) -> None:
    """A manifest without one NetworkPolicy stands for a release that dropped an object."""
    documents = (MANIFESTS / "install-v3.5.8.yaml").read_text().split("\n---\n")
    dropped = "NetworkPolicy/argocd-redis-network-policy"
    kept = [
        d
        for d in documents
        if not ("kind: NetworkPolicy" in d and "name: argocd-redis-network-policy" in d)
    ]
    assert len(kept) == len(documents) - 1
    trimmed = tmp_path / "install-trimmed.yaml"
    trimmed.write_text("\n---\n".join(kept))
    newer = site_copy(
        {
            "argocd_manifest_file": str(trimmed),
            "argocd_manifest_sha256": argocd.read_manifest(trimmed).sha256,
        }
    )
    plan = newer.run(PYINFRA, "--dry", "inventories/lab.py", "deploys/argocd.py")
    assert f"{dropped} (not in this manifest: would be deleted)" in plan.stdout + plan.stderr
    newer.deploy(deploy_file="deploys/argocd.py")
    gone = operator.kubectl(
        *CONTEXT, "-n", "argocd", "get", "networkpolicy", "argocd-redis-network-policy", check=False
    )
    assert "NotFound" in gone.stderr
    assert changed_operations(newer.plan(deploy_file="deploys/argocd.py")) == []
    # The CRDs stay whatever a manifest says: deleting one deletes what is stored in it.
    operator.kubectl(*CONTEXT, "get", "crd", "applications.argoproj.io")

    operator.deploy(deploy_file="deploys/argocd.py")
    operator.kubectl(
        *CONTEXT, "-n", "argocd", "get", "networkpolicy", "argocd-redis-network-policy"
    )
    assert changed_operations(operator.plan(deploy_file="deploys/argocd.py")) == []
