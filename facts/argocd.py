"""Facts about Argo CD on the management cluster, read with the VM's own `k3s kubectl`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pyinfra.api import FactBase, FactProcessError, QuoteString, StringCommand
from typing_extensions import override

from facts.util import kubectl
from tirosh import argocd, k3s


def fingerprint_command(namespace: str) -> StringCommand:
    """Prints `<objects> <sha256>` of what the deploy's field manager owns in the cluster."""
    resources = ",".join(sorted(argocd.RESOURCES.values()))
    template = QuoteString(f"go-template={argocd.fingerprint_template()}")
    listing = kubectl.get(
        resources,
        options=(
            *("-n", QuoteString(namespace), "-l", QuoteString(argocd.manifest_selector())),
            *("--show-managed-fields", "-o", template),
        ),
    )
    return StringCommand(
        StringCommand('owned="$(', listing, ')"', _separator=""),
        "&&",
        'printf "%s\\n" "$owned" | awk \'NF {n++} END {printf "%d ", n}\' &&',
        'printf "%s\\n" "$owned" | sort | sha256sum | cut -d" " -f1',
        # The objects themselves, one `owned Kind/name` line each, for pruning.
        '&& printf "%s\\n" "$owned" | awk \'NF {print "owned", $1}\' >&3',
    )


@dataclass(frozen=True)
class InstallState:
    """What the last apply recorded, and what the field manager owns now."""

    recorded_version: str | None
    recorded_manifest_sha256: str | None
    recorded_fingerprint: str | None
    objects: int
    fingerprint: str
    owned: tuple[str, ...] = ()
    image: str | None = None

    @property
    def installed_version(self) -> str | None:
        """The recorded version, else the tag of the image argocd-server runs."""
        if self.recorded_version is not None:
            return self.recorded_version
        if self.image is not None and ":" in self.image:
            return self.image.rsplit(":", 1)[1]
        return None

    @property
    def drifted(self) -> bool:
        return self.recorded_fingerprint != self.fingerprint


class ArgoCDInstall(FactBase[InstallState | None]):
    """
    Returns the recorded Argo CD install and the live fingerprint, or ``None`` without k3s.

    .. code:: python

        state = host.get_fact(ArgoCDInstall, namespace="argocd")
        state.recorded_version, state.drifted
    """

    @override
    def requires_command(self, namespace: str = "argocd") -> str:
        return k3s.BINARY_PATH

    @override
    def command(self, namespace: str = "argocd") -> StringCommand:
        template = (
            '{{with .data}}{{index . "version"}} {{index . "manifest-sha256"}} '
            '{{index . "fingerprint"}}{{end}}'
        )
        record = kubectl.get(
            "configmap",
            argocd.RECORD_CONFIGMAP,
            namespace=namespace,
            options=("--ignore-not-found", "-o", QuoteString(f"go-template={template}")),
        )
        # What argocd-server runs, for installs this deploy did not record (done by hand).
        image = kubectl.get(
            "deployment",
            argocd.SERVER_DEPLOYMENT,
            namespace=namespace,
            options=(
                "--ignore-not-found",
                "-o",
                "jsonpath={.spec.template.spec.containers[0].image}",
            ),
        )
        return StringCommand(
            StringCommand('recorded="$(', record, ')"', _separator=""),
            "&&",
            'echo "recorded ${recorded:-none}" &&',
            StringCommand('image="$(', image, ')"', _separator=""),
            "&&",
            'echo "image ${image:-none}" &&',
            # The listing goes to fd 3, outside the $( ) that catches the fingerprint.
            "{ echo current $(",
            fingerprint_command(namespace),
            "); } 3>&1",
        )

    @override
    def process(self, output: list[str]) -> InstallState | None:
        owned = tuple(line.split(" ", 1)[1] for line in output if line.startswith("owned "))
        lines = dict(line.split(" ", 1) for line in output if " " in line)
        try:
            recorded = lines["recorded"].split()
            objects, fingerprint = lines["current"].split()
        except (KeyError, ValueError):
            raise FactProcessError(f"unexpected output: {output}") from None
        version, manifest_sha, recorded_fingerprint = ([*recorded, None, None, None])[:3]
        if version == "none":
            version = None
        image = lines.get("image", "none").strip()
        return InstallState(
            version,
            manifest_sha,
            recorded_fingerprint,
            int(objects),
            fingerprint,
            owned,
            None if image == "none" else image,
        )


@dataclass(frozen=True)
class ManifestChanges:
    """What a server-side diff of a manifest finds: ``Kind/name`` of each object, never data."""

    staged: bool  # False: no copy on the VM to diff against (a release not downloaded yet)
    objects: tuple[str, ...] = ()


class ArgoCDChanges(FactBase[ManifestChanges | None]):
    """
    Returns the objects applying a manifest would create or change, or ``None`` when the diff
    failed. ``source`` is the manifest on the VM, or ``-`` for one sent on standard input
    (``_stdin``). Only names come back: the diff prints file names, never their content.

    .. code:: python

        host.get_fact(ArgoCDChanges, namespace="argocd", source="-", _stdin=manifest_text)
    """

    @override
    def requires_command(self, namespace: str, source: str) -> str:
        return k3s.BINARY_PATH

    @override
    def command(self, namespace: str, source: str) -> StringCommand:
        quoted = QuoteString(source)
        return StringCommand(
            "test -e",
            quoted,
            "-o",
            quoted,
            "= - || { echo not-staged; exit 0; } ;",
            "{ KUBECTL_EXTERNAL_DIFF='diff -N -r -q'",
            kubectl.server_side(
                "diff", argocd.FIELD_MANAGER, quoted, namespace, argocd.apply_selector()
            ),
            # kubectl diff exits 1 when something differs; the marker tells a listing from a
            # failure, which prints nothing on stdout.
            "|| test $? -eq 1; } && echo listed",
        )

    @override
    def process(self, output: list[str]) -> ManifestChanges | None:
        if output == ["not-staged"]:
            return ManifestChanges(staged=False)
        if not output or output[-1] != "listed":
            raise FactProcessError(f"unexpected output: {output[-3:]}")
        return ManifestChanges(True, tuple(argocd.changed_objects("\n".join(output[:-1]))))


# What server_insecure and ingress decide from, read in one `kubectl get` (resource, name).
SETTINGS_OBJECTS = (
    ("configmaps", argocd.PARAMS_CONFIGMAP),
    ("deployments.apps", argocd.SERVER_DEPLOYMENT),
    ("ingresses.networking.k8s.io", argocd.INGRESS_NAME),
)


class ArgoCDSettings(FactBase[dict[str, dict[str, Any]]]):
    """
    Returns the objects Argo CD's settings live in, keyed ``Kind/name``; absent ones are missing.

    One round trip for ``argocd-cmd-params-cm``, the ``argocd-server`` Deployment and its
    Ingress (never a Secret: pyinfra prints fact output at ``-vvv``).

    .. code:: python

        host.get_fact(ArgoCDSettings, namespace="argocd")["Ingress/argocd-server"]
    """

    @staticmethod
    @override
    def default() -> dict[str, dict[str, Any]]:
        return {}  # no k3s yet: none of them exists

    @override
    def requires_command(self, namespace: str = "argocd") -> str:
        return k3s.BINARY_PATH

    @override
    def command(self, namespace: str = "argocd") -> StringCommand:
        objects = [f"{resource}/{name}" for resource, name in SETTINGS_OBJECTS]
        return kubectl.get(
            *objects, namespace=namespace, options=("--ignore-not-found", "-o", "json")
        )

    @override
    def process(self, output: list[str]) -> dict[str, dict[str, Any]]:
        text = "\n".join(output).strip()
        if not text:
            return {}  # none of them exists
        try:
            data = json.loads(text)
        except ValueError as error:
            raise FactProcessError(f"kubectl printed no JSON: {error}") from None
        items = data.get("items", []) if data.get("kind") == "List" else [data]
        return {f"{item['kind']}/{item['metadata']['name']}": item for item in items}
