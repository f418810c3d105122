"""tirosh.argocd: the install manifest, versions, the diff listing, the Ingress object."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tirosh import argocd

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests" / "argocd"


def test_official_manifest_parses_into_its_59_objects() -> None:
    manifest = argocd.read_manifest(MANIFESTS / "install-v3.5.1.yaml")
    assert manifest.sha256 == "795a3a972224da6a7f9d32c3e946445f062b60fb46028476715affeb688236e3"
    assert len(manifest.objects) == 59
    assert argocd.ManifestObject("CustomResourceDefinition", "applicationsets.argoproj.io") in (
        manifest.objects
    )


def test_a_manifest_is_parsed_once_per_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = MANIFESTS / "install-v3.5.1.yaml"
    first = argocd.read_manifest(source, cache_dir=tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [f"{first.sha256}.json"]

    def no_parse(data: bytes) -> argocd.Manifest:
        raise AssertionError("parsed again")

    monkeypatch.setattr(argocd, "parse_manifest", no_parse)
    assert argocd.read_manifest(source, cache_dir=tmp_path) == first


def test_a_changed_or_damaged_cache_entry_is_never_trusted(tmp_path: Path) -> None:
    manifest = tmp_path / "install.yaml"
    manifest.write_bytes(b"kind: ConfigMap\nmetadata: {name: a}\n")
    cache = tmp_path / "cache"
    first = argocd.read_manifest(manifest, cache_dir=cache)
    manifest.write_bytes(b"kind: ConfigMap\nmetadata: {name: b}\n")  # new content, new key
    assert [str(o) for o in argocd.read_manifest(manifest, cache_dir=cache).objects] == [
        "ConfigMap/b"
    ]
    manifest.write_bytes(b"kind: ConfigMap\nmetadata: {name: a}\n")
    (cache / f"{first.sha256}.json").write_text('[["Pod", "x"]]')  # not a kind this deploy manages
    assert argocd.read_manifest(manifest, cache_dir=cache) == first


def test_a_manifest_with_a_namespace_or_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="sets a namespace"):
        argocd.parse_manifest(b"kind: ConfigMap\nmetadata: {name: x, namespace: other}\n")
    with pytest.raises(ValueError, match="'Pod'"):
        argocd.parse_manifest(b"kind: Pod\nmetadata: {name: x}\n")


@pytest.mark.parametrize(
    ("installed", "wanted", "downgrade"),
    [
        ("v3.5.1", "v3.4.7", True),
        ("v3.4.7", "v3.5.1", False),
        ("v3.5.1", "v3.5.1", False),
        ("v3.10.0", "v3.9.9", True),
        (None, "v3.4.7", False),
        ("v3.5.1", "stable", False),
    ],
)
def test_downgrades_compare_release_numbers(
    installed: str | None, wanted: str, downgrade: bool
) -> None:
    assert argocd.is_downgrade(installed, wanted) is downgrade


def test_changed_objects_come_from_file_names_only() -> None:
    output = (
        "Files /tmp/LIVE-1/v1.ConfigMap.argocd.argocd-cm and "
        "/tmp/MERGED-2/v1.ConfigMap.argocd.argocd-cm differ\n"
        "Files /tmp/LIVE-1/apiextensions.k8s.io.v1.CustomResourceDefinition..applications."
        "argoproj.io and /tmp/MERGED-2/apiextensions.k8s.io.v1.CustomResourceDefinition.."
        "applications.argoproj.io differ\n"
        "Files /tmp/LIVE-1/apps.v1.Deployment.argocd.argocd-server and "
        "/tmp/MERGED-2/apps.v1.Deployment.argocd.argocd-server differ\n"
    )
    assert argocd.changed_objects(output) == [
        "ConfigMap/argocd-cm",
        "CustomResourceDefinition/applications.argoproj.io",
        "Deployment/argocd-server",
    ]
    assert argocd.changed_objects("") == []


def test_ingress_object_follows_the_settings() -> None:
    plain = argocd.ingress_object("argocd", "gitops.example.org", "traefik", 80, False, "tls")
    assert plain["spec"]["ingressClassName"] == "traefik"
    assert plain["spec"]["rules"][0]["host"] == "gitops.example.org"
    backend = plain["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend == {"service": {"name": "argocd-server", "port": {"number": 80}}}
    assert "tls" not in plain["spec"]
    tls = argocd.ingress_object("argocd", "gitops.example.org", "nginx", 443, True, "gitops-tls")
    assert tls["spec"]["tls"] == [{"hosts": ["gitops.example.org"], "secretName": "gitops-tls"}]
    # Values are quoted: a class named like a YAML keyword stays a string.
    odd = argocd.ingress_object("argocd", "gitops.example.org", "true", 80, False, "tls")
    assert odd["spec"]["ingressClassName"] == "true"


def test_ingress_match_ignores_what_others_added_but_not_what_the_deploy_sets() -> None:
    desired = argocd.ingress_object("argocd", "gitops.example.org", "traefik", 80, False, "tls")
    live = {**desired, "spec": {**desired["spec"], "defaultBackend": {"resource": {}}}}
    assert argocd.ingress_matches(live, desired)
    other_host = argocd.ingress_object("argocd", "other.example.org", "traefik", 80, False, "tls")
    assert not argocd.ingress_matches(other_host, desired)
    with_tls = argocd.ingress_object("argocd", "gitops.example.org", "traefik", 80, True, "tls")
    assert not argocd.ingress_matches(with_tls, desired)


def test_the_objects_argocd_maintains_are_selected_by_their_name_label_in_both_manifests() -> None:
    # The apply skips them with a label selector: it only works if every object carries the
    # label (a `notin` selector also takes objects without it) and theirs names them.
    for version in ("v3.4.7", "v3.5.1"):
        documents = [
            d for d in yaml.safe_load_all((MANIFESTS / f"install-{version}.yaml").read_text()) if d
        ]
        labels = {d["metadata"]["name"]: d["metadata"].get("labels", {}) for d in documents}
        assert all(argocd.NAME_LABEL in found for found in labels.values()), version
        for name in argocd.MAINTAINED_BY_ARGOCD:
            assert labels[name][argocd.NAME_LABEL] == name
    assert argocd.apply_selector() == "app.kubernetes.io/name notin (argocd-ssh-known-hosts-cm)"


def test_the_local_phase_never_applies_as_the_install() -> None:
    """What the install's field manager owns is drift-checked and pruned when a newer manifest
    drops it: the local phase's Secrets must belong to managers of their own, and the check
    must look at the manifest's objects only."""
    from facts.argocd import fingerprint_command
    from local.kube import argocd_secrets, secrets

    managers = {argocd.SECRETS_MANAGER, argocd.REGISTRATION_MANAGER, secrets.FIELD_MANAGER}
    assert argocd.FIELD_MANAGER not in managers and len(managers) == 2
    assert "REGISTRATION_MANAGER" in vars(argocd_secrets)
    command = str(fingerprint_command("argocd").get_raw_value())
    assert f"-l {argocd.NAME_LABEL} " in command
