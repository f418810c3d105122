"""Argo CD's declarative form of repositories, credential templates and clusters: Secrets.

Argo CD keeps each registered repository, credential template and cluster as a Secret in its
namespace, labelled ``argocd.argoproj.io/secret-type`` (``repository``, ``repo-creds``,
``cluster``); its API writes the same Secrets (``util/db`` in Argo CD). The local phase
declares them here and server-side applies them, which costs no Argo CD login and no
connection test when nothing changed.

Pure: from the declarations and the secret values the caller read, the data each Secret must
hold (only the keys this project owns), the name Argo CD's API would give it (so a registration
made earlier through the API is the same Secret, adopted), and which owned keys differ from
what is stored: by name only, never a value.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from tirosh.clusters import WorkloadCluster
from tirosh.plan import Action
from tirosh.repositories import Credentials, Repository, Template

__all__ = [
    "KINDS",
    "SECRET_TYPE_LABEL",
    "DeclaredSecret",
    "Kind",
    "StoredSecret",
    "cluster_secret",
    "fnv32a",
    "manifest",
    "planned",
    "repository_secret",
    "secret_name",
    "template_secret",
    "touched",
]

Kind = Literal["repository", "repo-creds", "cluster"]
KINDS: Final[tuple[Kind, ...]] = ("repository", "repo-creds", "cluster")
SECRET_TYPE_LABEL: Final = "argocd.argoproj.io/secret-type"
# Argo CD's API marks the Secrets it writes so that its own delete removes them (and not just
# their label): the declared ones are marked the same way, so `argocd repo rm` behaves alike.
MANAGED_BY: Final = {"managed-by": "argocd.argoproj.io"}
# Credential keys of a repository or template: a key the declaration no longer uses is written
# empty (Argo CD reads "" as none) when the stored Secret still holds a value there, since a
# key another manager wrote (Argo CD's API, before adoption) would survive our apply.
_CREDENTIALS: Final = ("username", "password", "sshPrivateKey")


def fnv32a(text: str) -> int:
    """FNV-1a, 32 bits: the hash in the names Argo CD gives its Secrets."""
    value = 0x811C9DC5
    for byte in text.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def secret_name(kind: Kind, key: str) -> str:
    """The name Argo CD's API gives the Secret of a repository (URL, no project), a template
    (URL) or a cluster (server URL): ``repo-N``, ``creds-N``, ``cluster-<host>-N``."""
    if kind == "repository":
        return f"repo-{fnv32a(key)}"
    if kind == "repo-creds":
        return f"creds-{fnv32a(key)}"
    host = (urlsplit(key).hostname or "").lower().replace(":", "-")
    return f"cluster-{host}-{fnv32a(key)}"


@dataclass(frozen=True)
class StoredSecret:
    """One of Argo CD's Secrets as read: its name, kind, decoded data and resourceVersion."""

    name: str
    kind: Kind
    data: Mapping[str, str]
    resource_version: str = ""

    @property
    def key(self) -> str:
        """What Argo CD identifies it by: the URL, or a cluster's server (no trailing /)."""
        if self.kind == "cluster":
            return (self.data.get("server") or "").rstrip("/")
        return self.data.get("url") or ""


@dataclass(frozen=True)
class DeclaredSecret:
    """What the site declares one of Argo CD's Secrets must hold.

    + kind: repository, repo-creds or cluster
    + key: the URL (the cluster's server URL), by which a stored Secret is adopted
    + subject, what: how the plan names it (``tirosh-gitops``, ``repository https://...``)
    + data: the owned keys and their values (a secret among them: never printed)
    + json_keys: keys holding JSON, compared by meaning (a cluster's ``config``)
    """

    kind: Kind
    key: str
    subject: str
    what: str
    data: Mapping[str, str]
    json_keys: tuple[str, ...] = ()
    clearable: tuple[str, ...] = field(default=_CREDENTIALS)

    def owned(self, stored: StoredSecret | None) -> dict[str, str]:
        """The data to apply: the declared keys, plus unused credential keys the stored
        Secret still holds a value in, emptied."""
        data = dict(self.data)
        if stored is not None:
            for key in self.clearable:
                if key not in data and stored.data.get(key):
                    data[key] = ""
        return data

    def differing_keys(self, stored: StoredSecret | None) -> list[str]:
        """The owned keys whose stored value differs (all of them when nothing is stored)."""
        wanted = self.owned(stored)
        if stored is None:
            return sorted(wanted)
        return sorted(k for k, v in wanted.items() if not self._same(k, stored.data.get(k), v))

    def _same(self, key: str, stored: str | None, wanted: str) -> bool:
        if key in self.json_keys:
            try:
                return bool(json.loads(stored or "null") == json.loads(wanted))
            except ValueError:
                return False
        return (stored or "") == wanted


def _credential_data(credentials: Credentials, secret: str | None) -> dict[str, str]:
    if credentials.kind == "ssh":
        return {"sshPrivateKey": secret or ""}
    if credentials.kind == "token":
        return {"username": credentials.username or "", "password": secret or ""}
    return {}


def repository_secret(repository: Repository, secret: str | None) -> DeclaredSecret:
    """A repository's Secret: ``url``, ``name``, ``type`` and its own credentials, if any (a
    repository with none takes its template's, as Argo CD matches them)."""
    data = {"url": repository.url, "name": repository.name, "type": repository.type}
    data.update(_credential_data(repository.credentials, secret))
    what = f"repository {repository.url}"
    return DeclaredSecret("repository", repository.url, repository.name, what, data)


def template_secret(template: Template, secret: str | None) -> DeclaredSecret:
    """A credential template's Secret: every repository under its URL prefix uses it."""
    data = {"url": template.url, "type": "git"}
    data.update(_credential_data(template.credentials, secret))
    subject = f"template {template.url}"
    return DeclaredSecret("repo-creds", template.url, subject, f"repo-creds {template.url}", data)


def cluster_secret(
    cluster: WorkloadCluster,
    server: str,
    token: str,
    ca: str | None,
    insecure: bool,
    server_name: str | None,
) -> DeclaredSecret:
    """A workload cluster's Secret: a bearer token and CA, never a client certificate or key.

    ``config`` is the whole of Argo CD's ClusterConfig and is owned as one key: a client
    certificate left there by ``argocd cluster add`` makes it differ, and the apply drops it.
    """
    tls: dict[str, Any] = {"insecure": insecure}
    if ca:
        tls["caData"] = ca
    if server_name:
        tls["serverName"] = server_name
    config = json.dumps({"bearerToken": token, "tlsClientConfig": tls}, sort_keys=True)
    data = {"server": server, "name": cluster.name, "config": config}
    if cluster.namespaces:
        data["namespaces"] = ",".join(cluster.namespaces)
    return DeclaredSecret(
        "cluster",
        server,
        f"cluster {cluster.name}",
        f"Argo CD cluster {cluster.name} ({server})",
        data,
        json_keys=("config",),
        clearable=("namespaces",),
    )


@dataclass(frozen=True)
class Planned:
    """A declared Secret against what is stored: the name to apply, and what differs."""

    declared: DeclaredSecret
    stored: StoredSecret | None
    name: str
    keys: list[str]  # the owned keys that differ; empty: unchanged

    @property
    def action(self) -> Action:
        if not self.keys:
            return "unchanged"
        return "update" if self.stored is not None else "create"

    @property
    def label(self) -> str:
        """The plan's line for it: the object, and the keys that change (names only)."""
        if self.action != "update":
            return self.declared.what
        return f"{self.declared.what} (changed: {', '.join(self.keys)})"


def planned(declared: Sequence[DeclaredSecret], stored: Sequence[StoredSecret]) -> list[Planned]:
    """Each declared Secret against the stored one of its kind and URL (adopted under its
    name, whoever made it), else under the name Argo CD's API would give it."""
    by_key = {(s.kind, s.key): s for s in stored}
    result = []
    for item in declared:
        found = by_key.get(
            (item.kind, item.key.rstrip("/") if item.kind == "cluster" else item.key)
        )
        name = found.name if found is not None else secret_name(item.kind, item.key)
        result.append(Planned(item, found, name, item.differing_keys(found)))
    return result


def touched(items: Sequence[Planned]) -> list[Planned]:
    """The clusters and repositories a change touches, to have Argo CD test: those whose own
    Secret differs, and those without credentials of their own under a changed template."""
    changed_templates = [
        i.declared.key.rstrip("/") for i in items if i.declared.kind == "repo-creds" and i.keys
    ]
    tested = []
    for item in items:
        if item.declared.kind == "repo-creds":
            continue
        under = any(item.declared.key.startswith(prefix) for prefix in changed_templates)
        own = any(item.declared.data.get(key) for key in _CREDENTIALS)
        if item.keys or (under and not own):
            tested.append(item)
    return tested


def manifest(item: Planned, namespace: str) -> dict[str, Any]:
    """The server-side apply body: the label, the marker annotation and the owned keys."""
    data = item.declared.owned(item.stored)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": item.name,
            "namespace": namespace,
            "labels": {SECRET_TYPE_LABEL: item.declared.kind},
            "annotations": dict(MANAGED_BY),
        },
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in sorted(data.items())},
    }


def restore_manifest(item: Planned, namespace: str) -> dict[str, Any] | None:
    """The apply that puts an updated Secret's owned keys back as they were stored (None for
    one that was created: it is deleted instead)."""
    if item.stored is None:
        return None
    body = manifest(item, namespace)
    old = {k: item.stored.data.get(k, "") for k in item.declared.owned(item.stored)}
    body["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in sorted(old.items())}
    return body
