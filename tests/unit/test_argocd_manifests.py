"""What the deploy assumes about Argo CD's install manifest, checked against every release it
supports (the manifests shipped in manifests/argocd/): the objects it applies and prunes, the
workloads the status waits for, the CRDs, the Services the Ingress and the port-forward use,
the ConfigMaps it patches or leaves to Argo CD, and the images the lab builds for."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab import images, versions
from local import phase
from local.argocd import status
from local.kube import port_forward
from tirosh import argocd

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests" / "argocd"
# The releases the README's version table lists as supported.
SUPPORTED = ("v3.5.1", "v3.5.8", "v3.6.2")
# What client-side apply can store in its last-applied annotation (256 KiB); larger objects
# need server-side apply, which the deploy always uses.
ANNOTATION_LIMIT = 262_144


@cache  # 2 MB of YAML each: parsed once per session (the tests only read them)
def documents(version: str) -> list[dict[str, Any]]:
    path = MANIFESTS / f"install-{version}.yaml"
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [d for d in yaml.load_all(path.read_bytes(), Loader=loader) if d]


def by_name(version: str, kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents(version) if d["kind"] == kind}


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    spec = workload["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


@pytest.mark.parametrize("version", SUPPORTED)
def test_every_object_is_of_a_kind_the_deploy_manages_with_no_namespace(version: str) -> None:
    manifest = argocd.read_manifest(MANIFESTS / f"install-{version}.yaml")
    assert manifest.objects  # parse_manifest refuses unknown kinds and namespaced objects
    assert all(obj.kind in argocd.RESOURCES for obj in manifest.objects)


@pytest.mark.parametrize("version", SUPPORTED)
def test_the_workloads_are_exactly_those_the_status_waits_for(version: str) -> None:
    found = {
        (d["kind"], d["metadata"]["name"])
        for d in documents(version)
        if d["kind"] in ("Deployment", "StatefulSet")
    }
    assert found == set(status.EXPECTED_WORKLOADS)
    assert {name for _, name in found} >= set(phase.API_WORKLOADS)


@pytest.mark.parametrize("version", SUPPORTED)
def test_every_argocd_container_runs_the_release_image_the_verify_check_expects(
    version: str,
) -> None:
    for kind in ("Deployment", "StatefulSet"):
        for name, workload in by_name(version, kind).items():
            for container in containers(workload):
                if "argoproj/argocd:" in container["image"]:
                    assert container["image"] == versions.argocd_image(version), name


@pytest.mark.parametrize("version", SUPPORTED)
def test_the_crds_the_status_checks_are_there_and_applicationset_needs_server_side_apply(
    version: str,
) -> None:
    crds = by_name(version, "CustomResourceDefinition")
    assert set(status.ARGOCD_CRDS) <= set(crds)
    compact = json.dumps(crds["applicationsets.argoproj.io"], separators=(",", ":"))
    assert len(compact) > ANNOTATION_LIMIT


@pytest.mark.parametrize("version", SUPPORTED)
def test_argocd_server_is_what_the_ingress_and_the_port_forward_reach(version: str) -> None:
    service = by_name(version, "Service")[argocd.INGRESS_NAME]
    ports = {p["port"]: p["targetPort"] for p in service["spec"]["ports"]}
    assert ports[80] == port_forward.SERVER_PORT  # argocd_ingress_service_port's default
    assert service["spec"]["selector"] == {argocd.NAME_LABEL: argocd.SERVER_DEPLOYMENT}
    server = by_name(version, "Deployment")[argocd.SERVER_DEPLOYMENT]
    labels = server["spec"]["template"]["metadata"]["labels"]
    assert f"{argocd.NAME_LABEL}={labels[argocd.NAME_LABEL]}" == port_forward.SERVER_SELECTOR
    served = {
        p["containerPort"]
        for c in server["spec"]["template"]["spec"]["containers"]
        for p in c.get("ports", [])
    }
    assert port_forward.SERVER_PORT in served


@pytest.mark.parametrize("version", SUPPORTED)
def test_server_insecure_is_read_from_the_params_configmap_the_deploy_patches(
    version: str,
) -> None:
    assert argocd.PARAMS_CONFIGMAP in by_name(version, "ConfigMap")
    server = by_name(version, "Deployment")[argocd.SERVER_DEPLOYMENT]
    references = [
        env["valueFrom"]["configMapKeyRef"]
        for container in containers(server)
        for env in container.get("env", [])
        if "configMapKeyRef" in env.get("valueFrom", {})
    ]
    assert {
        "name": argocd.PARAMS_CONFIGMAP,
        "key": argocd.SERVER_INSECURE_KEY,
        "optional": True,
    } in references
    # The manifest sets no data there: the deploy's key is never taken back by a re-apply.
    assert not by_name(version, "ConfigMap")[argocd.PARAMS_CONFIGMAP].get("data")


@pytest.mark.parametrize("version", SUPPORTED)
def test_the_objects_argocd_maintains_exist_and_every_object_carries_the_name_label(
    version: str,
) -> None:
    docs = documents(version)
    assert all(argocd.NAME_LABEL in d["metadata"].get("labels", {}) for d in docs)
    configmaps = by_name(version, "ConfigMap")
    for name in argocd.MAINTAINED_BY_ARGOCD:
        assert configmaps[name]["metadata"]["labels"][argocd.NAME_LABEL] == name


@pytest.mark.parametrize("version", SUPPORTED)
def test_the_secrets_are_argocds_own_and_the_initial_admin_secret_is_not_in_the_manifest(
    version: str,
) -> None:
    secrets = by_name(version, "Secret")
    assert "argocd-secret" in secrets and not secrets["argocd-secret"].get("data")
    assert "argocd-initial-admin-secret" not in secrets  # argocd-server creates it


def test_v3_6_2_adds_one_object_and_drops_none() -> None:
    """The 3.5 -> 3.6 upgrade: a headless Service for the application controller is new; nothing
    a 3.5 install created goes away (so nothing is pruned on the way up)."""
    old = {str(o) for o in argocd.read_manifest(MANIFESTS / "install-v3.5.8.yaml").objects}
    new = {str(o) for o in argocd.read_manifest(MANIFESTS / "install-v3.6.2.yaml").objects}
    assert new - old == {"Service/argocd-application-controller"}
    assert old - new == set()
    headless = by_name("v3.6.2", "Service")["argocd-application-controller"]
    assert headless["spec"]["clusterIP"] == "None"


def test_v3_5_8_differs_from_v3_5_1_only_in_its_images() -> None:
    old = (MANIFESTS / "install-v3.5.1.yaml").read_text().splitlines()
    new = (MANIFESTS / "install-v3.5.8.yaml").read_text().splitlines()
    assert len(old) == len(new)
    changed = {(a.strip(), b.strip()) for a, b in zip(old, new, strict=True) if a != b}
    assert changed == {
        ("image: quay.io/argoproj/argocd:v3.5.1", "image: quay.io/argoproj/argocd:v3.5.8"),
        ("image: ghcr.io/dexidp/dex:v2.45.0", "image: ghcr.io/dexidp/dex:v2.45.1"),
    }


@pytest.mark.parametrize("version", versions.ARGOCD_BUILDS)
def test_the_lab_assembles_every_image_the_manifests_it_runs_name(version: str) -> None:
    named = {
        c["image"]
        for kind in ("Deployment", "StatefulSet")
        for workload in by_name(version, kind).values()
        for c in containers(workload)
    }
    assert named <= set(images.image_names())
