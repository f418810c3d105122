"""What a converged management VM looks like: k3s, its config and API, Argo CD, the Ingress."""

from __future__ import annotations

import json
import shlex
from typing import Any
from urllib.parse import urlsplit

import yaml

from tirosh.site import Site

CONFIG = "/etc/rancher/k3s/config.yaml"


def kubectl_json(host: Any, *args: str) -> Any:
    command = "k3s kubectl " + " ".join(shlex.quote(arg) for arg in args) + " -o json"
    return json.loads(host.check_output(command))


def test_k3s_is_active_and_enabled(management: Any) -> None:
    k3s = management.service("k3s")
    assert k3s.is_running
    assert k3s.is_enabled


def test_config_yaml_is_root_only_and_lists_the_sites_tls_sans(management: Any, site: Site) -> None:
    config = management.file(CONFIG)
    assert config.user == "root"
    assert config.mode == 0o600
    rendered = yaml.safe_load(config.content_string) or {}
    wanted = site.k3s.config.get("tls-san") or []
    assert set(wanted) <= set(rendered.get("tls-san") or [])


def test_the_api_certificate_covers_the_sites_api_server(management: Any, site: Site) -> None:
    name = urlsplit(site.k3s.api_server).hostname
    sans = management.check_output(
        "openssl s_client -connect 127.0.0.1:6443 </dev/null 2>/dev/null"
        " | openssl x509 -noout -ext subjectAltName"
    )
    entries = {item.strip().split(":", 1)[-1] for item in sans.replace("\n", ",").split(",")}
    assert name in entries, f"{name} is not among the API certificate's names: {sans}"


def test_argocd_workloads_are_ready_at_the_pinned_version(management: Any, site: Site) -> None:
    namespace = site.argocd.namespace
    objects = kubectl_json(management, "-n", namespace, "get", "deployments,statefulsets")
    assert objects["items"], f"no Argo CD workloads in namespace {namespace}"
    for item in objects["items"]:
        name = f"{item['kind']}/{item['metadata']['name']}"
        wanted = item["spec"].get("replicas", 1)
        assert item["status"].get("readyReplicas", 0) == wanted, f"{name} is not ready"
        images = [c["image"] for c in item["spec"]["template"]["spec"]["containers"]]
        for image in images:
            if "argoproj/argocd:" in image:
                assert image.endswith(":" + site.argocd.version), f"{name} runs {image}"


def test_the_ingress_is_as_declared(management: Any, site: Site) -> None:
    settings = site.argocd
    found = kubectl_json(management, "-n", settings.namespace, "get", "ingress")["items"]
    ours = [item for item in found if item["metadata"]["name"] == "argocd-server"]
    if not settings.ingress_enabled:
        assert ours == []
        return
    assert len(ours) == 1
    spec = ours[0]["spec"]
    assert spec.get("ingressClassName") == settings.ingress_class_name
    assert [rule.get("host") for rule in spec["rules"]] == [settings.ingress_host]
    assert bool(spec.get("tls")) == settings.ingress_tls_enabled
