"""Argo CD's declarative Secrets: names as Argo CD's API gives them, what differs, what is applied."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tirosh.argocd_secrets import (
    SECRET_TYPE_LABEL,
    StoredSecret,
    cluster_secret,
    fnv32a,
    manifest,
    planned,
    repository_secret,
    restore_manifest,
    secret_name,
    template_secret,
    touched,
)
from tirosh.clusters import WorkloadCluster
from tirosh.repositories import Credentials, Repository, Template

PRIVATE = Repository("p", "https://g.example/p.git", credentials=Credentials("bot", "T"))
PUBLIC = Repository("pub", "https://g.example/pub.git")
GPU = WorkloadCluster("ctx", "gpu", namespaces=("apps", "tools"))


def test_names_are_the_ones_argo_cds_api_gives() -> None:
    # Vectors of Argo CD's util/db (RepoURLToSecretName, URIToSecretName) at v3.5.
    assert secret_name("repository", "https://github.com/example/gitops.git") == "repo-246050966"
    assert secret_name("repo-creds", "https://github.com/example") == "creds-3581915399"
    assert secret_name("cluster", "https://10.0.0.2:6443") == "cluster-10.0.0.2-3628164356"
    assert secret_name("cluster", "https://API.Example:6443").startswith("cluster-api.example-")
    assert fnv32a("") == 0x811C9DC5


def test_nothing_stored_is_a_create_of_every_owned_key() -> None:
    [item] = planned([repository_secret(PRIVATE, "s3cret")], [])
    assert item.action == "create"
    assert item.name == secret_name("repository", PRIVATE.url)
    assert item.keys == ["name", "password", "type", "url", "username"]


def _stored(declared_data: dict[str, str], name: str = "anything", **extra: str) -> StoredSecret:
    return StoredSecret(name, "repository", {**declared_data, **extra}, "7")


def test_same_data_is_unchanged_whatever_else_the_secret_holds() -> None:
    declared = repository_secret(PRIVATE, "s3cret")
    stored = _stored(dict(declared.data), project="", insecure="false")
    [item] = planned([declared], [stored])
    assert item.action == "unchanged" and item.keys == []


def test_an_update_names_the_keys_never_the_values() -> None:
    declared = repository_secret(PRIVATE, "new-token")
    stored = _stored({**declared.data, "password": "old-token"}, name="repo-made-by-hand")
    [item] = planned([declared], [stored])
    assert item.action == "update"
    assert item.keys == ["password"]
    assert item.name == "repo-made-by-hand"  # adopted by URL under its own name
    assert "new-token" not in item.label and "old-token" not in item.label
    assert item.label.endswith("(changed: password)")


def test_credentials_no_longer_declared_are_emptied_not_left_behind() -> None:
    declared = repository_secret(PUBLIC, None)
    stored = _stored({**declared.data, "username": "bot", "password": "was-private"})
    [item] = planned([declared], [stored])
    assert item.keys == ["password", "username"]
    data = manifest(item, "argocd")["data"]
    assert base64.b64decode(data["password"]) == b""
    # Empty keys the API wrote are not a difference.
    quiet = _stored({**declared.data, "username": "", "password": ""})
    assert planned([declared], [quiet])[0].keys == []


def test_the_kind_is_part_of_the_identity() -> None:
    template = template_secret(Template("https://g.example/p.git", Credentials("bot", "T")), "t")
    repository = repository_secret(PUBLIC, None)
    stored = StoredSecret("creds-1", "repo-creds", {"url": PUBLIC.url, "type": "git"})
    items = planned([template, repository], [stored])
    assert [i.action for i in items] == ["create", "create"]


def test_a_cluster_config_is_compared_by_meaning() -> None:
    declared = cluster_secret(GPU, "https://10.0.0.5:6443", "tok", "Q0E=", False, None)
    config = json.loads(declared.data["config"])
    # As Argo CD's API writes it: Go's encoding, other key order, no spaces.
    rewritten = json.dumps(
        {"tlsClientConfig": {"caData": "Q0E=", "insecure": False}, "bearerToken": "tok"},
        separators=(",", ":"),
    )
    stored = StoredSecret(
        "cluster-10.0.0.5-1",
        "cluster",
        {"server": "https://10.0.0.5:6443", "name": "gpu", "namespaces": "apps,tools",
         "config": rewritten},
    )  # fmt: skip
    [item] = planned([declared], [stored])
    assert item.action == "unchanged"
    assert config["bearerToken"] == "tok"
    # A client certificate left by `argocd cluster add` makes it differ, and goes.
    with_cert = json.dumps({**config, "tlsClientConfig": {"certData": "Qw==", "caData": "Q0E="}})
    changed = planned(
        [declared], [StoredSecret("c", "cluster", {**stored.data, "config": with_cert})]
    )
    assert changed[0].keys == ["config"]
    # Namespaces no longer declared are emptied (cluster-wide again).
    wide = cluster_secret(
        WorkloadCluster("ctx", "gpu"), "https://10.0.0.5:6443", "tok", "Q0E=", False, None
    )
    assert planned([wide], [stored])[0].keys == ["namespaces"]


def test_manifest_labels_marks_and_encodes() -> None:
    [item] = planned(
        [template_secret(Template("https://g.example/org", Credentials("bot", "T")), "t")], []
    )
    body = manifest(item, "argocd")
    assert body["metadata"]["labels"] == {SECRET_TYPE_LABEL: "repo-creds"}
    assert body["metadata"]["annotations"] == {"managed-by": "argocd.argoproj.io"}
    assert body["metadata"]["namespace"] == "argocd"
    decoded = {k: base64.b64decode(v).decode() for k, v in body["data"].items()}
    assert decoded == {
        "url": "https://g.example/org",
        "type": "git",
        "username": "bot",
        "password": "t",
    }
    assert restore_manifest(item, "argocd") is None  # a created one is removed instead


def test_restore_puts_the_stored_values_back() -> None:
    declared = repository_secret(PRIVATE, "wrong")
    stored = _stored({**declared.data, "password": "right"})
    [item] = planned([declared], [stored])
    body = restore_manifest(item, "argocd")
    assert body is not None
    assert base64.b64decode(body["data"]["password"]) == b"right"
    assert base64.b64decode(body["data"]["url"]).decode() == PRIVATE.url


def test_ssh_repositories_own_their_key() -> None:
    ssh = Repository("s", "git@g.example:p.git", credentials=Credentials(ssh_key_file=Path("/k")))
    declared = repository_secret(ssh, "KEY")
    assert declared.data["sshPrivateKey"] == "KEY"
    assert "password" not in declared.data


def test_a_changed_template_touches_the_repositories_that_use_it() -> None:
    template = template_secret(Template("https://g.example/org", Credentials("bot", "T")), "t")
    under = repository_secret(Repository("a", "https://g.example/org/a.git"), None)
    own = repository_secret(
        Repository("b", "https://g.example/org/b.git", credentials=Credentials("me", "X")), "x"
    )
    elsewhere = repository_secret(Repository("c", "https://h.example/c.git"), None)
    stored = [
        StoredSecret("repo-a", "repository", dict(under.data)),
        StoredSecret("repo-b", "repository", dict(own.data)),
        StoredSecret("repo-c", "repository", dict(elsewhere.data)),
    ]
    items = planned([template, under, own, elsewhere], stored)
    assert [i.declared.subject for i in touched(items)] == ["a"]
    # Nothing changed: nothing to test.
    settled = planned(
        [template, under], [StoredSecret("creds-1", "repo-creds", dict(template.data)), stored[0]]
    )
    assert touched(settled) == []
