"""Install and configure Argo CD on the management cluster with the VM's own kubectl.

(Over 300 lines: the install, its drift check and the settings operations share their facts.)
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from pyinfra import host, state
from pyinfra.api import FileUploadCommand, OperationError, QuoteString, StringCommand, operation
from pyinfra.facts.files import Sha256File
from pyinfra.operations import files

from facts.argocd import (
    ArgoCDChanges,
    ArgoCDInstall,
    ArgoCDSettings,
    InstallState,
    fingerprint_command,
)
from facts.util import kubectl
from tirosh import argocd, regular_file

logger = logging.getLogger("pyinfra")


@operation()
def installed(
    version: str,
    manifest_file: str | Path | None = None,
    manifest_url: str | None = None,
    manifest_sha256: str | None = None,
    namespace: str = "argocd",
    allow_downgrade: bool = False,
):
    """
    Install or upgrade Argo CD from its official manifest by server-side apply.

    + version: the Argo CD release, such as ``v3.5.1`` (``stable`` is allowed but mutable)
    + manifest_file: the manifest on the operator machine (air-gapped sites)
    + manifest_url: where the VM downloads the manifest from, when no file is given
    + manifest_sha256: the manifest's expected sha256; a mismatch refuses the install
    + namespace: the namespace Argo CD runs in (created first: the manifest sets none)
    + allow_downgrade: apply an older version than the one installed

    The manifest is applied with the VM's ``k3s kubectl apply --server-side --force-conflicts``
    under the field manager ``tirosh-infra``; client-side apply cannot store the ApplicationSet
    CRD. Whether anything would change is decided from the cluster, not assumed: the version
    and manifest recorded at the last apply, and what the field manager owns now, which a hand
    edit or a deleted object changes (see ``tirosh/argocd.py``). When something would change
    and the manifest is local, ``--dry`` lists the objects a server-side diff finds.

    **Example:**

    .. code:: python

        argocd.installed(
            name="Install Argo CD v3.5.1",
            version="v3.5.1",
            manifest_file="manifests/argocd/install-v3.5.1.yaml",
            manifest_sha256="795a3a97...",
        )
    """
    manifest = _local_manifest(manifest_file, manifest_sha256)
    wanted_sha = manifest.sha256 if manifest else manifest_sha256
    current = host.get_fact(ArgoCDInstall, namespace=namespace)
    if current is not None:
        installed = current.installed_version
        if argocd.is_downgrade(installed, version) and not allow_downgrade:
            raise OperationError(
                f"refusing to downgrade Argo CD from {installed} to {version}; "
                "set argocd_allow_downgrade: true in argocd/vars.yml to force it"
            )
        same_release = current.recorded_version == version and (
            wanted_sha is None or current.recorded_manifest_sha256 == wanted_sha
        )
        if same_release and not current.drifted and not _dropped(current, manifest):
            host.noop(
                f"Argo CD {version} is applied; its {current.objects} objects have not drifted"
            )
            return
        if not state.is_executing:
            _log_planned_changes(namespace, manifest_file, argocd.staged_manifest_path(version))
            for obj in _dropped(current, manifest):
                logger.info(f"{host.print_prefix}  {obj} (not in this manifest: would be deleted)")

    staged = argocd.staged_manifest_path(version)
    yield from files.directory._inner(path=argocd.STAGING_DIR, mode="755")
    if manifest_file is not None and manifest is not None:
        if host.get_fact(Sha256File, path=staged) != manifest.sha256:
            yield FileUploadCommand(str(manifest_file), staged)
    else:
        # A pinned copy staged earlier is used again; an unpinned one is always fetched anew.
        # The temporary file is in the staging directory, so the rename into place is atomic.
        yield from files.download._inner(
            src=manifest_url or argocd.DEFAULT_MANIFEST_URL.format(version=version),
            dest=staged,
            sha256sum=wanted_sha,
            force=wanted_sha is None,
            temp_dir=argocd.STAGING_DIR,
            extra_curl_args={"--retry": "3"},
        )
    yield _verify(staged, wanted_sha)
    for obj in _dropped(current, manifest) if current is not None else []:
        # Before the apply: the record written after it must not list what is gone.
        kind, name = obj.split("/", 1)
        yield kubectl.delete(argocd.RESOURCES[kind], name, namespace, ignore_not_found=True)
    yield _apply(staged, namespace, version, wanted_sha or "unpinned")


def _dropped(current: InstallState, manifest: argocd.Manifest | None) -> list[str]:
    """Objects an earlier apply created that this manifest no longer has (a newer release).

    Only known from a local manifest. CustomResourceDefinitions are never pruned: deleting one
    deletes every Application or AppProject stored in it.
    """
    if manifest is None:
        return []
    wanted = {str(obj) for obj in manifest.objects}
    return [
        obj
        for obj in current.owned
        if obj not in wanted
        and obj.split("/", 1)[0] in argocd.RESOURCES
        and not obj.startswith("CustomResourceDefinition/")
    ]


def _local_manifest(manifest_file: str | Path | None, sha256: str | None) -> argocd.Manifest | None:
    if manifest_file is None:
        return None
    try:
        manifest = argocd.read_manifest(Path(manifest_file))
    except (OSError, ValueError) as error:
        raise OperationError(f"Argo CD manifest {manifest_file}: {error}") from None
    if sha256 is not None and manifest.sha256 != sha256:
        raise OperationError(
            f"Argo CD manifest {manifest_file}: sha256 {manifest.sha256} is not the pinned {sha256}"
        )
    return manifest


def _log_planned_changes(namespace: str, manifest_file: str | Path | None, staged: str) -> None:
    """Print which objects a server-side diff would change: names only, never Secret data.

    The diff runs on the VM against the local manifest (sent on stdin) or, for a downloaded
    one, the copy staged by an earlier run; a release not downloaded yet has no listing.
    """
    stdin = None if manifest_file is None else regular_file.read_text(Path(manifest_file))
    changes = host.get_fact(
        ArgoCDChanges,
        namespace=namespace,
        source="-" if stdin is not None else staged,
        _stdin=stdin,
        # Only a listing for the operator: the apply itself does not depend on it.
        _ignore_errors=True,
    )
    prefix = host.print_prefix
    if changes is None:
        logger.warning(f"{prefix}Argo CD: cannot list the changed objects")
    elif not changes.staged:
        logger.info(f"{prefix}Argo CD: the manifest is downloaded at apply; no listing before")
    elif not changes.objects:
        logger.info(f"{prefix}Argo CD: no object differs; the apply refreshes the record")
    else:
        count = len(changes.objects)
        logger.info(f"{prefix}Argo CD objects that would be created or changed ({count}):")
        for obj in changes.objects:
            logger.info(f"{prefix}  {obj}")


def _verify(staged: str, sha256: str | None) -> StringCommand:
    if sha256 is None:
        return StringCommand("test", "-s", QuoteString(staged))
    return StringCommand(
        "echo",
        QuoteString(f"{sha256}  {staged}"),
        "|",
        "sha256sum",
        "-c",
        "--quiet",
        "-",
        "||",
        "{",
        "rm",
        "-f",
        QuoteString(staged),
        ";",
        "exit",
        "1;",
        "}",
    )


def _create_missing(staged: str, namespace: str) -> list[Any]:
    """Apply each object Argo CD maintains only when it does not exist yet."""
    parts: list[Any] = []
    for name in argocd.MAINTAINED_BY_ARGOCD:
        selector = f"{argocd.NAME_LABEL}={name}"
        parts += [
            "{",
            kubectl.get("configmap", name, namespace=namespace),
            ">/dev/null",
            "2>&1",
            "||",
            kubectl.server_side(
                "apply", argocd.FIELD_MANAGER, QuoteString(staged), namespace, selector
            ),
            ">/dev/null",
            ";",
            "}",
            "&&",
        ]
    return parts


def _apply(staged: str, namespace: str, version: str, manifest_sha: str) -> StringCommand:
    ns = QuoteString(namespace)
    return StringCommand(
        "{",
        kubectl.get("namespace", namespace),
        ">/dev/null",
        "2>&1",
        "||",
        kubectl.KUBECTL,
        "create",
        "namespace",
        ns,
        ";",
        "}",
        "&&",
        kubectl.server_side(
            "apply", argocd.FIELD_MANAGER, QuoteString(staged), namespace, argocd.apply_selector()
        ),
        ">/dev/null",
        "&&",
        *_create_missing(staged, namespace),
        StringCommand(
            'fingerprint="$( ( ',
            fingerprint_command(namespace),
            ' ) 3>/dev/null | cut -d" " -f2)"',
            _separator="",
        ),
        "&&",
        # An empty fingerprint (the listing failed) must not be recorded as the truth.
        'test -n "$fingerprint"',
        "&&",
        kubectl.KUBECTL,
        "-n",
        ns,
        "create",
        "configmap",
        QuoteString(argocd.RECORD_CONFIGMAP),
        QuoteString(f"--from-literal=version={version}"),
        QuoteString(f"--from-literal=manifest-sha256={manifest_sha}"),
        '--from-literal=fingerprint="$fingerprint"',
        "--dry-run=client",
        "-o",
        "yaml",
        "|",
        kubectl.server_side("apply", f"{argocd.FIELD_MANAGER}-record", "-"),
        ">/dev/null",
    )


@operation()
def server_insecure(insecure: bool, namespace: str = "argocd"):
    """
    Set ``server.insecure`` in ``argocd-cmd-params-cm`` and restart argocd-server once for it.

    + insecure: serve plain HTTP, for a proxy or Ingress that terminates TLS in front of it
    + namespace: Argo CD's namespace

    argocd-server reads the setting only at start; without a restart a TLS-terminating proxy
    sees a redirect loop. The restart is a change of the pod template annotation
    ``tirosh-infra/server.insecure``, which also records the value the running pods started with.

    **Example:**

    .. code:: python

        argocd.server_insecure(name="argocd-server serves plain HTTP", insecure=True)
    """
    value = "true" if insecure else "false"
    live = host.get_fact(ArgoCDSettings, namespace=namespace)
    params = live.get(f"ConfigMap/{argocd.PARAMS_CONFIGMAP}")
    server = live.get(f"Deployment/{argocd.SERVER_DEPLOYMENT}")
    configured = ((params or {}).get("data") or {}).get(argocd.SERVER_INSECURE_KEY)
    template = (server or {}).get("spec", {}).get("template", {}).get("metadata", {})
    running = (template.get("annotations") or {}).get(argocd.SERVER_INSECURE_ANNOTATION)
    if configured == value and running == value:
        host.noop(f"argocd-server runs with server.insecure={value}")
        return
    if configured != value:
        config_map = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": argocd.PARAMS_CONFIGMAP, "namespace": namespace},
            "data": {argocd.SERVER_INSECURE_KEY: value},
        }
        yield kubectl.apply_json(config_map, argocd.SETTINGS_MANAGER)
    if running != value:
        patch = {
            "spec": {
                "template": {
                    "metadata": {"annotations": {argocd.SERVER_INSECURE_ANNOTATION: value}}
                }
            }
        }
        yield StringCommand(
            kubectl.KUBECTL,
            "-n",
            QuoteString(namespace),
            "patch",
            "deployment",
            argocd.SERVER_DEPLOYMENT,
            "--type=merge",
            f"--field-manager={argocd.SETTINGS_MANAGER}",
            "-p",
            QuoteString(json.dumps(patch, separators=(",", ":"))),
        )


@operation()
def ingress(
    enabled: bool,
    host_name: str,
    class_name: str = "traefik",
    service_port: int = 80,
    tls: bool = False,
    tls_secret_name: str = "argocd-server-tls",
    namespace: str = "argocd",
):
    """
    Expose argocd-server through a ``networking.k8s.io/v1`` Ingress, or remove it.

    + enabled: whether the Ingress should exist
    + host_name: the host the UI and API are served at
    + class_name: the IngressClass (k3s's built-in ``traefik``)
    + service_port: port of the ``argocd-server`` Service (80 serves plain HTTP with
      ``server.insecure``)
    + tls: add a TLS section for ``host_name`` with ``tls_secret_name``
    + tls_secret_name: the Secret with the certificate, when ``tls``
    + namespace: Argo CD's namespace

    **Example:**

    .. code:: python

        argocd.ingress(name="Argo CD Ingress", enabled=True, host_name="gitops.example.org")
    """
    # The same read as server_insecure's: one round trip for both while nothing changed.
    live = host.get_fact(ArgoCDSettings, namespace=namespace).get(f"Ingress/{argocd.INGRESS_NAME}")
    if not enabled:
        if live is None:
            host.noop("no Argo CD Ingress, as configured")
            return
        yield kubectl.delete("ingress", argocd.INGRESS_NAME, namespace)
        return
    desired = argocd.ingress_object(
        namespace, host_name, class_name, service_port, tls, tls_secret_name
    )
    if live is not None and argocd.ingress_matches(live, desired):
        host.noop(f"Argo CD Ingress serves {host_name} with class {class_name}")
        return
    yield kubectl.apply_json(desired, argocd.INGRESS_MANAGER)
