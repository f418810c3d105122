"""Argo CD upgrades on the lab with Pods running, and 3.6's objects on the lab's control plane.

Runs after test_argocd_running (see conftest.py), with the lab site's release (lab/versions.py
ARGOCD, v3.5.8) deployed and Ready. The lab has images of two releases (ARGOCD_BUILDS), so the
Pods of both run:

1. a site converged on the previous release (ARGOCD_PREVIOUS, v3.5.1), every Pod of it Ready
   (the session deployed the current one first, so this site gets there with
   argocd_allow_downgrade; a re-run of it then changes nothing);
2. raising the pin to the current release rolls every workload to the new image, keeps every
   object (same uid) and what Argo CD and the operator added, and leaves the drift check quiet;
3. the previous pin again is refused as a downgrade;
4. v3.6.2, pinned by URL and sha256 as a site that can fetch it would, applied by the deploy's
   own operation (the VM downloads it from a server on the lab bridge): every object, the new
   headless Service and the 387 KB ApplicationSet CRD, server-side applied; its Pods cannot run
   here (no 3.6 build: lab/README.md). Then back to the current release, which prunes the
   Service 3.5 does not have, and every Pod is Ready again.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab import config, images, versions
from tests.lab.operator import PYINFRA, Operator, changed_operations
from tirosh import argocd

pytestmark = pytest.mark.lab
MANIFESTS = config.REPO_ROOT / "manifests" / "argocd"
CONTEXT = ("--context", "lab/k3s")
PREVIOUS, CURRENT, NEWER = versions.ARGOCD_PREVIOUS, versions.ARGOCD, "v3.6.2"
CONTROLLER_POD = "argocd-application-controller-0"
ARGOCD_DEPLOY = "deploys/argocd.py"
# Objects the deploy and the operator add beside the manifest's, which an upgrade must keep.
KEPT_BESIDE_THE_MANIFEST = (
    ("secret", "argocd-initial-admin-secret"),
    ("ingress", argocd.INGRESS_NAME),
    ("configmap", argocd.RECORD_CONFIGMAP),
)


def kubectl_json(operator: Operator, *args: str) -> Any:
    return json.loads(operator.kubectl(*CONTEXT, *args, "-o", "json").stdout)


def manifest(version: str) -> argocd.Manifest:
    return argocd.read_manifest(MANIFESTS / f"install-{version}.yaml")


def workloads(version: str) -> list[argocd.ManifestObject]:
    return [o for o in manifest(version).objects if o.kind in ("Deployment", "StatefulSet")]


@pytest.fixture
def site_with(operator: Operator, tmp_path: Path) -> Callable[[dict[str, object]], Operator]:
    """An operator whose lab site has these argocd/vars.yml values (None removes a key)."""

    def edit(values: dict[str, object]) -> Operator:
        sites = tmp_path / "sites"
        if not sites.exists():
            shutil.copytree(config.REPO_ROOT / "sites", sites)
        vars_file = sites / "lab" / "argocd" / "vars.yml"
        data = yaml.safe_load(vars_file.read_text())
        data.update(values)
        vars_file.write_text(yaml.safe_dump({k: v for k, v in data.items() if v is not None}))
        return Operator(home=operator.home, env={"TIROSH_SITES_DIR": str(sites)})

    return edit


def pin(version: str, **more: object) -> dict[str, object]:
    return {
        "argocd_version": version,
        "argocd_manifest_file": str(MANIFESTS / f"install-{version}.yaml"),
        "argocd_manifest_sha256": manifest(version).sha256,
        **more,
    }


def image_digests(name: str) -> set[str]:
    """The manifest and config digests of one lab image: what a Pod's imageID names."""
    layout = images.ensure()
    digest = images.manifest_digests(layout)[name]
    blob = layout / "blobs" / "sha256" / digest.removeprefix("sha256:")
    return {digest, json.loads(blob.read_bytes())["config"]["digest"]}


def argocd_pods(operator: Operator) -> list[dict[str, Any]]:
    items = kubectl_json(operator, "-n", "argocd", "get", "pods")["items"]
    return [pod for pod in items if not pod["metadata"].get("deletionTimestamp")]


def _all_on(operator: Operator, version: str) -> list[str]:
    """What keeps the namespace from running ``version`` only, every Pod Ready (empty: it does)."""
    wanted = versions.argocd_image(version)
    problems = []
    pods = argocd_pods(operator)
    for pod in pods:
        name = pod["metadata"]["name"]
        for container in [*pod["spec"].get("initContainers", []), *pod["spec"]["containers"]]:
            if "argoproj/argocd:" in container["image"] and container["image"] != wanted:
                problems.append(f"{name}/{container['name']} runs {container['image']}")
        ready = [c["status"] for c in pod["status"].get("conditions", []) if c["type"] == "Ready"]
        if ready != ["True"]:
            problems.append(f"{name} is not Ready ({pod['status'].get('phase')})")
    if len(pods) < len(workloads(version)):
        problems.append(f"{len(pods)} Pods for {len(workloads(version))} workloads")
    return problems


def wait_until_all_on(operator: Operator, version: str, timeout: float = 420) -> None:
    """Every workload rolled out, every Pod Ready and running ``version``, no old Pod left."""
    deadline = time.monotonic() + timeout
    for workload in workloads(version):
        operator.kubectl(
            *CONTEXT,
            "-n",
            "argocd",
            "rollout",
            "status",
            f"{workload.kind}/{workload.name}",
            f"--timeout={int(max(deadline - time.monotonic(), 1))}s",
        )
    while problems := _all_on(operator, version):
        assert time.monotonic() < deadline, f"not all on {version}: {problems}"
        time.sleep(2)


def forced_rollback_of_the_controller(operator: Operator, version: str, within: float = 60) -> None:
    """An OrderedReady StatefulSet does not replace a Pod that never became Ready (Kubernetes'
    documented "forced rollback": delete it); a Deployment replaces its own. Watched for a
    while: the controller may still be creating the Pod of the release left behind."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        pods = [p for p in argocd_pods(operator) if p["metadata"]["name"] == CONTROLLER_POD]
        if pods and pods[0]["spec"]["containers"][0]["image"] == versions.argocd_image(version):
            return
        if pods:
            operator.kubectl(*CONTEXT, "-n", "argocd", "delete", "pod", CONTROLLER_POD)
        time.sleep(2)
    raise AssertionError(f"{CONTROLLER_POD} is not recreated on {version} within {within} s")


def uids(operator: Operator, version: str) -> dict[str, str]:
    """``Kind/name`` -> uid of every object of the manifest and of what is kept beside it."""
    found = {}
    for kind in sorted({o.kind for o in manifest(version).objects}):
        listing = kubectl_json(operator, "get", argocd.RESOURCES[kind], "-n", "argocd")
        names = {o.name for o in manifest(version).objects if o.kind == kind}
        for item in listing["items"]:
            if item["metadata"]["name"] in names:
                found[f"{kind}/{item['metadata']['name']}"] = item["metadata"]["uid"]
    for resource, name in KEPT_BESIDE_THE_MANIFEST:
        item = kubectl_json(operator, "-n", "argocd", "get", resource, name)
        found[f"{resource}/{name}"] = item["metadata"]["uid"]
    return found


# An AppProject the operator made: stored in Argo CD's CRD, which no upgrade may drop.
PROJECT: dict[str, Any] = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "AppProject",
    "metadata": {"name": "kept-across-upgrades", "namespace": "argocd"},
    "spec": {"description": "made by the upgrade test", "sourceRepos": ["*"]},
}
KNOWN_HOSTS_CM = "argocd-ssh-known-hosts-cm"


def host_key_line(directory: Path) -> str:
    """A known_hosts line for a fresh key, as `argocd cert add-ssh` would add one."""
    key = directory / "kept_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    kind, blob = key.with_suffix(".pub").read_text().split()[:2]
    return f"kept.lab.test {kind} {blob}"


def set_known_hosts(operator: Operator, data: str) -> None:
    patch = json.dumps({"data": {"ssh_known_hosts": data}})
    operator.kubectl(
        *CONTEXT, "-n", "argocd", "patch", "configmap", KNOWN_HOSTS_CM, "--type=merge", "-p", patch
    )


@pytest.fixture(scope="module")
def before_the_upgrade() -> dict[str, Any]:
    """What test 1 saw on the converged previous release, for test 2 to compare."""
    return {}


def test_a_site_converges_on_the_previous_release_with_its_pods_running(
    operator: Operator,
    site_with: Callable[[dict[str, object]], Operator],
    before_the_upgrade: dict[str, Any],
    tmp_path: Path,
) -> None:
    wait_until_all_on(operator, CURRENT)  # where the session's deploy left it
    site_with(pin(PREVIOUS, argocd_allow_downgrade=True)).deploy(deploy_file=ARGOCD_DEPLOY)
    wait_until_all_on(operator, PREVIOUS)
    older_site = site_with(pin(PREVIOUS, argocd_allow_downgrade=None))
    assert changed_operations(older_site.plan(deploy_file=ARGOCD_DEPLOY)) == []

    project = tmp_path / "project.json"
    project.write_text(json.dumps(PROJECT))
    operator.kubectl(
        *CONTEXT, "apply", "--server-side", "--field-manager=operator", "-f", str(project)
    )
    # A host key the operator added: Argo CD's data, which no apply may take back.
    known = kubectl_json(operator, "-n", "argocd", "get", "configmap", KNOWN_HOSTS_CM)
    original = known["data"]["ssh_known_hosts"]
    before_the_upgrade["known_hosts"] = original
    before_the_upgrade["host_key"] = host_key_line(tmp_path)
    set_known_hosts(operator, original.rstrip("\n") + "\n" + before_the_upgrade["host_key"] + "\n")
    before_the_upgrade["uids"] = uids(operator, PREVIOUS)
    before_the_upgrade["pods"] = {p["metadata"]["uid"] for p in argocd_pods(operator)}
    record = kubectl_json(operator, "-n", "argocd", "get", "configmap", argocd.RECORD_CONFIGMAP)
    assert record["data"]["version"] == PREVIOUS
    assert record["data"]["manifest-sha256"] == manifest(PREVIOUS).sha256


def test_raising_the_pin_rolls_every_workload_and_keeps_everything(
    operator: Operator, before_the_upgrade: dict[str, Any]
) -> None:
    assert before_the_upgrade, "needs the converged previous release of the test before"
    assert changed_operations(operator.plan(deploy_file=ARGOCD_DEPLOY)) == [
        f"Install Argo CD {CURRENT} (server-side apply)"
    ]
    started = time.monotonic()
    operator.deploy(deploy_file=ARGOCD_DEPLOY)  # the lab site itself: its pin is CURRENT
    wait_until_all_on(operator, CURRENT)
    print(f"\n{PREVIOUS} -> {CURRENT}: every Pod Ready {time.monotonic() - started:.1f} s after")

    # Every workload rolled: new Pods, on the lab's image of the new release.
    new, old = (
        image_digests(versions.argocd_image(CURRENT)),
        image_digests(versions.argocd_image(PREVIOUS)),
    )
    pods = argocd_pods(operator)
    assert not {p["metadata"]["uid"] for p in pods} & before_the_upgrade["pods"]
    owners = set()
    for pod in pods:
        owners.add(pod["metadata"]["labels"][argocd.NAME_LABEL])
        for status in pod["status"]["containerStatuses"]:
            if "argoproj/argocd:" in status["image"]:
                digest = status["imageID"].rsplit("@", 1)[-1]
                assert digest in new and digest not in old, (pod["metadata"]["name"], status)
    assert owners >= {w.name for w in workloads(CURRENT)}

    # Nothing pruned or replaced: the same objects (uids), the operator's and Argo CD's data.
    assert uids(operator, CURRENT) == before_the_upgrade["uids"]
    project = kubectl_json(
        operator, "-n", "argocd", "get", "appproject", PROJECT["metadata"]["name"]
    )
    assert project["spec"]["description"] == "made by the upgrade test"
    known = kubectl_json(operator, "-n", "argocd", "get", "configmap", KNOWN_HOSTS_CM)
    assert before_the_upgrade["host_key"] in known["data"]["ssh_known_hosts"]
    set_known_hosts(operator, before_the_upgrade["known_hosts"])  # as later tests expect it
    operator.kubectl(*CONTEXT, "-n", "argocd", "delete", "appproject", PROJECT["metadata"]["name"])
    params = kubectl_json(operator, "-n", "argocd", "get", "configmap", argocd.PARAMS_CONFIGMAP)
    assert params["data"][argocd.SERVER_INSECURE_KEY] == "true"
    record = kubectl_json(operator, "-n", "argocd", "get", "configmap", argocd.RECORD_CONFIGMAP)
    assert record["data"]["version"] == CURRENT
    assert record["data"]["manifest-sha256"] == manifest(CURRENT).sha256

    # The drift check is quiet, for the Argo CD part and for the whole deploy; healthy.
    assert changed_operations(operator.plan(deploy_file=ARGOCD_DEPLOY)) == []
    assert changed_operations(operator.plan()) == []
    result = operator.run("make", "-s", "argocd/status", "SITE=lab", check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_previous_pin_is_then_refused_as_a_downgrade(
    operator: Operator, site_with: Callable[[dict[str, object]], Operator]
) -> None:
    result = site_with(pin(PREVIOUS)).run(
        PYINFRA, "-y", "inventories/lab.py", ARGOCD_DEPLOY, check=False
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert f"refusing to downgrade Argo CD from {CURRENT} to {PREVIOUS}" in output
    record = kubectl_json(operator, "-n", "argocd", "get", "configmap", argocd.RECORD_CONFIGMAP)
    assert record["data"]["version"] == CURRENT
    assert _all_on(operator, CURRENT) == []


@pytest.fixture
def manifest_server() -> Iterator[str]:
    """manifests/argocd/ over HTTP on the lab bridge: where a site's argocd_manifest_url points."""
    handler = partial(SimpleHTTPRequestHandler, directory=str(MANIFESTS))
    server = ThreadingHTTPServer((config.GATEWAY, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{config.GATEWAY}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_v3_6_objects_from_a_pinned_url_apply_by_the_deploys_operation_and_back(
    operator: Operator,
    site_with: Callable[[dict[str, object]], Operator],
    manifest_server: str,
) -> None:
    newer = site_with(
        {
            "argocd_version": NEWER,
            "argocd_manifest_file": None,
            "argocd_manifest_url": f"{manifest_server}/install-{NEWER}.yaml",
            "argocd_manifest_sha256": manifest(NEWER).sha256,
        }
    )
    newer.deploy(deploy_file=ARGOCD_DEPLOY)

    # Every object of 3.6.2, applied by the deploy's field manager; the CRDs Established.
    wanted = manifest(NEWER)
    for kind in sorted({o.kind for o in wanted.objects}):
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
        expected = {o.name for o in wanted.objects if o.kind == kind}
        if kind == "ConfigMap":  # created once, then Argo CD's (argocd.MAINTAINED_BY_ARGOCD)
            expected -= set(argocd.MAINTAINED_BY_ARGOCD)
        assert expected <= owned, (
            f"{kind}: not applied by {argocd.FIELD_MANAGER}: {expected - owned}"
        )
    for crd in ("applications", "applicationsets", "appprojects"):
        operator.kubectl(*CONTEXT, "wait", "--for=condition=Established", f"crd/{crd}.argoproj.io")
    headless = kubectl_json(
        operator, "-n", "argocd", "get", "service", "argocd-application-controller"
    )
    assert headless["spec"]["clusterIP"] == "None"
    server = kubectl_json(operator, "-n", "argocd", "get", "deployment", argocd.SERVER_DEPLOYMENT)
    assert server["spec"]["template"]["spec"]["containers"][0]["image"] == versions.argocd_image(
        NEWER
    )
    record = kubectl_json(operator, "-n", "argocd", "get", "configmap", argocd.RECORD_CONFIGMAP)
    assert (record["data"]["version"], record["data"]["manifest-sha256"]) == (NEWER, wanted.sha256)
    # Converged: the pinned copy the VM staged is used again, nothing differs.
    assert changed_operations(newer.plan(deploy_file=ARGOCD_DEPLOY)) == []

    # Back to the lab's release: refused as a downgrade, then forced; 3.6's extra Service goes.
    refused = operator.run(PYINFRA, "-y", "inventories/lab.py", ARGOCD_DEPLOY, check=False)
    assert f"refusing to downgrade Argo CD from {NEWER} to {CURRENT}" in (
        refused.stdout + refused.stderr
    )
    back = site_with(pin(CURRENT, argocd_manifest_url=None, argocd_allow_downgrade=True))
    plan = back.run(PYINFRA, "--dry", "inventories/lab.py", ARGOCD_DEPLOY)
    gone = "Service/argocd-application-controller (not in this manifest: would be deleted)"
    assert gone in plan.stdout + plan.stderr
    back.deploy(deploy_file=ARGOCD_DEPLOY)
    missing = operator.kubectl(
        *CONTEXT, "-n", "argocd", "get", "service", "argocd-application-controller", check=False
    )
    assert "NotFound" in missing.stderr
    forced_rollback_of_the_controller(operator, CURRENT)
    wait_until_all_on(operator, CURRENT)
    assert changed_operations(operator.plan(deploy_file=ARGOCD_DEPLOY)) == []
