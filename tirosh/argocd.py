"""Argo CD without a host: the install manifest, version pins, drift fingerprints, server settings.

Argo CD is installed from its official manifest by server-side apply under one field manager
(`FIELD_MANAGER`). What that manager owns on each object is recorded right after every apply;
the drift check compares it with what the manager owns now. Status updates by controllers and
fields written by Argo CD itself (the admin password in argocd-secret) do not touch that
manager's fields; a hand edit of a field the manifest sets moves ownership away, and a deleted
object drops out: both change the fingerprint. That makes the check as truthful as a
server-side diff of the whole manifest, for the cost of one `kubectl get`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tirosh import regular_file
from tirosh.templates import render

FIELD_MANAGER = "tirosh-infra"
# The local phase's managers, never FIELD_MANAGER: the install's drift check and its pruning of
# objects a newer manifest drops cover what that manager owns, so a Secret it applied would
# read as drift on every deploy and be deleted by the next upgrade.
SECRETS_MANAGER = "tirosh-infra-secrets"  # the site's registered Secrets (Image Updater)
REGISTRATION_MANAGER = "tirosh-infra-registration"  # Argo CD's repository and cluster Secrets
# Separate managers for the fields the deploy sets on top of the manifest: applying them under
# FIELD_MANAGER would make the manifest apply give those fields up again, and vice versa.
SETTINGS_MANAGER = "tirosh-infra-settings"
INGRESS_MANAGER = "tirosh-infra-ingress"
RECORD_CONFIGMAP = "tirosh-infra-argocd"
# The Secret Argo CD writes the first admin password to (the bootstrap login reads it).
INITIAL_ADMIN_SECRET = "argocd-initial-admin-secret"
# Manifest objects whose data Argo CD's own API maintains after the install: the SSH known
# hosts (`argocd cert add-ssh`, the local phase's repositories). The manifest ships default
# data for it, so re-applying would take that field back and drop every host key added since.
# The deploy creates it when missing and otherwise leaves it, and its drift check ignores it.
MAINTAINED_BY_ARGOCD = ("argocd-ssh-known-hosts-cm",)
NAME_LABEL = "app.kubernetes.io/name"  # every object of the manifest carries it


def manifest_selector() -> str:
    """The label selector of the manifest's objects (all carry NAME_LABEL): the drift check and
    pruning look at nothing else, whoever else applies under the install's field manager."""
    return NAME_LABEL


def apply_selector() -> str:
    """The label selector of the objects every apply takes: all but MAINTAINED_BY_ARGOCD."""
    return f"{NAME_LABEL} notin ({','.join(MAINTAINED_BY_ARGOCD)})"


# The deploy records on argocd-server's pod template the server.insecure it rolled out with;
# argocd-server reads argocd-cmd-params-cm only at start, so a difference means it still runs
# with the old value until restarted (the status shows "restart pending").
SERVER_INSECURE_ANNOTATION = "tirosh-infra/server.insecure"
PARAMS_CONFIGMAP = "argocd-cmd-params-cm"
SERVER_INSECURE_KEY = "server.insecure"
SERVER_DEPLOYMENT = "argocd-server"
# The Ingress the deploy manages, named after the Service it routes to.
INGRESS_NAME = "argocd-server"
DEFAULT_ARGOCD_VERSION = "v3.5.8"
DEFAULT_MANIFEST_URL = (
    "https://raw.githubusercontent.com/argoproj/argo-cd/{version}/manifests/install.yaml"
)
STAGING_DIR = "/var/lib/tirosh-infra/argocd"

# kind -> resource name for `kubectl get`, for every kind the official manifest has.
RESOURCES = {
    "CustomResourceDefinition": "customresourcedefinitions.apiextensions.k8s.io",
    "ClusterRole": "clusterroles.rbac.authorization.k8s.io",
    "ClusterRoleBinding": "clusterrolebindings.rbac.authorization.k8s.io",
    "ServiceAccount": "serviceaccounts",
    "Role": "roles.rbac.authorization.k8s.io",
    "RoleBinding": "rolebindings.rbac.authorization.k8s.io",
    "ConfigMap": "configmaps",
    "Secret": "secrets",
    "Service": "services",
    "Deployment": "deployments.apps",
    "StatefulSet": "statefulsets.apps",
    "NetworkPolicy": "networkpolicies.networking.k8s.io",
}

_VERSION = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$", re.ASCII)


@dataclass(frozen=True)
class ManifestObject:
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class Manifest:
    """An install manifest: its bytes' sha256 and the objects it declares."""

    sha256: str
    objects: tuple[ManifestObject, ...]

    @property
    def resources(self) -> list[str]:
        return sorted({RESOURCES[o.kind] for o in self.objects})


def manifest_cache_dir() -> Path:
    """Where parsed manifests are kept between runs, by sha256 (the operator's cache, not the repo)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tirosh-infra" / "manifests"


def read_manifest(path: Path, cache_dir: Path | None = None) -> Manifest:
    """The manifest at ``path``; parsed once per content (1.9 MB of YAML costs ~0.3-2 s)."""
    data = regular_file.read_bytes(path, "manifest file")  # a FIFO is refused, never waited on
    sha256 = hashlib.sha256(data).hexdigest()
    entry = (cache_dir or manifest_cache_dir()) / f"{sha256}.json"
    cached = _cached_objects(entry)
    if cached is not None:
        return Manifest(sha256, cached)
    manifest = parse_manifest(data)
    _store_objects(entry, manifest.objects)
    return manifest


def _cached_objects(entry: Path) -> tuple[ManifestObject, ...] | None:
    try:
        pairs = json.loads(entry.read_text())
        objects = tuple(ManifestObject(kind, name) for kind, name in pairs)
    except (OSError, ValueError, TypeError):
        return None  # absent or unreadable: parse again
    if not all(o.kind in RESOURCES and isinstance(o.name, str) for o in objects):
        return None
    return objects


def _store_objects(entry: Path, objects: tuple[ManifestObject, ...]) -> None:
    # Written atomically; a cache that cannot be written only costs the next run a parse.
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=entry.parent, prefix=".", suffix=".json")
        with os.fdopen(fd, "w") as stream:
            json.dump([[o.kind, o.name] for o in objects], stream)
        os.replace(temporary, entry)
    except (OSError, TypeError):  # TypeError: pyinfra_testing's stand-in os.stat in fixture tests
        pass


def parse_manifest(data: bytes) -> Manifest:
    """The objects of an install manifest; ValueError (one line, with the position for a YAML
    error) when it is not a stream of Kubernetes objects this deploy manages."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader is 10x faster on 1.9 MB
    objects = []
    try:
        documents = list(yaml.load_all(data, Loader=loader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ValueError(f"invalid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    for document in documents:
        if not document:
            continue
        if not isinstance(document, dict) or not isinstance(document.get("metadata"), dict):
            raise ValueError("holds a document that is not a Kubernetes object")
        kind = document.get("kind")
        if kind not in RESOURCES:
            raise ValueError(f"the manifest has a {kind!r}, which this deploy does not manage")
        name = document["metadata"].get("name")
        if not isinstance(name, str):
            raise ValueError(f"a {kind} has no metadata.name")
        if document["metadata"].get("namespace"):
            raise ValueError(f"{kind}/{name}: sets a namespace")
        objects.append(ManifestObject(kind, name))
    return Manifest(sha256=hashlib.sha256(data).hexdigest(), objects=tuple(objects))


def manifest_problem(path: Path, sha256: str | None, parse: bool = True) -> str | None:
    """For the site loader: why the manifest file cannot be installed, or None: it cannot be
    read, is not a manifest this deploy manages, or is not the pinned content. Read through
    ``read_manifest``, so a file is parsed once per content (1.9 MB of YAML costs a second on
    every command otherwise); ``parse`` False: only read and checked against the pin."""
    try:
        if parse:
            found = read_manifest(path).sha256
        else:
            found = hashlib.sha256(regular_file.read_bytes(path, "manifest file")).hexdigest()
    except OSError as error:
        return f"cannot read the manifest: {error.strerror}"
    except ValueError as error:
        return str(error)
    if sha256 is not None and found != sha256:
        return f"sha256 {found} is not the pinned {sha256}"
    return None


def parse_version(version: str) -> tuple[int, int, int] | None:
    """(3, 5, 1) for "v3.5.1"; None for a pin that is not a release, such as "stable"."""
    match = _VERSION.match(version)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def is_downgrade(installed: str | None, wanted: str) -> bool:
    old, new = parse_version(installed or ""), parse_version(wanted)
    return old is not None and new is not None and new < old


def staged_manifest_path(version: str) -> str:
    return f"{STAGING_DIR}/install-{version}.yaml"


def fingerprint_template() -> str:
    """A kubectl go-template printing, per object, what FIELD_MANAGER owns on it.

    One line per object: `Kind/name uid fields`. Go prints maps with sorted keys, so the same
    ownership always prints the same; objects the manager does not own print nothing, nor do
    those Argo CD maintains (MAINTAINED_BY_ARGOCD): its API taking their data is not drift.
    """
    skipped = " ".join(f'(eq $o.metadata.name "{name}")' for name in MAINTAINED_BY_ARGOCD)
    return (
        "{{range .items}}{{$o := .}}"
        f"{{{{if not (or {skipped} false)}}}}"
        "{{range .metadata.managedFields}}"
        f'{{{{if and (eq .manager "{FIELD_MANAGER}") (eq .operation "Apply")}}}}'
        '{{$o.kind}}/{{$o.metadata.name}} {{$o.metadata.uid}} {{.fieldsV1}}{{"\\n"}}'
        "{{end}}{{end}}{{end}}{{end}}"
    )


def changed_objects(diff_output: str) -> list[str]:
    """`Kind/name` of each object `kubectl diff` names with `KUBECTL_EXTERNAL_DIFF="diff -N -r -q"`.

    That diff prints only file names, `group.version.Kind.namespace.name` (the namespace empty
    for cluster-scoped objects), never their content, so Secret data cannot appear.
    """
    changed: list[str] = []
    for word in diff_output.split():
        if "/" not in word:
            continue
        parts = word.rsplit("/", 1)[1].split(".")
        kind_at = next((i for i, part in enumerate(parts) if part[:1].isupper()), None)
        if kind_at is None or len(parts) < kind_at + 3:
            continue
        # The namespace has no dots; the name (a CRD's, say) may.
        name = ".".join(parts[kind_at + 2 :])
        obj = f"{parts[kind_at]}/{name}"
        if obj not in changed:
            changed.append(obj)
    return changed


def ingress_object(
    namespace: str, host: str, class_name: str, service_port: int, tls: bool, tls_secret: str
) -> dict[str, Any]:
    """The argocd-server Ingress: UI, REST and gRPC-web over HTTP/1.1 to the Service's port."""
    rendered = render(
        "argocd/ingress.yaml.j2",
        namespace=namespace,
        host=host,
        class_name=class_name,
        service_port=service_port,
        tls=tls,
        tls_secret=tls_secret,
    )
    data: dict[str, Any] = yaml.safe_load(rendered)
    return data


def ingress_matches(live: dict[str, Any], desired: dict[str, Any]) -> bool:
    """Whether the live Ingress has every field and label the deploy sets.

    Fields someone else added are left alone (a re-apply would not remove them either); a TLS
    section when none is wanted counts, because the deploy's own earlier apply put it there.
    """
    spec = live.get("spec") or {}
    labels = live.get("metadata", {}).get("labels") or {}
    wanted_labels = desired["metadata"].get("labels") or {}
    return (
        all(spec.get(key) == value for key, value in desired["spec"].items())
        and ("tls" in desired["spec"] or "tls" not in spec)
        and all(labels.get(k) == v for k, v in wanted_labels.items())
    )
