"""Health of Argo CD on a site's management cluster, as an operator checks it after a deploy.

(Over 300 lines: the status model, its reading and its one-screen summary belong together.)

``read_status`` reads, through an explicit kubeconfig and context (never the process-global
one): the workloads of Argo CD's namespace, its three CRDs, the Ingress hosts, whether
argocd-server still runs with an older ``server.insecure`` than configured, and, for each
workload that is not ready, the latest Events about it. ``summary`` turns that into one screen
of plain text. Secrets are never read.

``make argocd/status`` (``local.commands``): exit 0 healthy, 1 not, 2 for a site or kubeconfig
problem.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from kubernetes import client

from local.argocd.api_check import ApiCheck, check_api, one_line
from tirosh.argocd import (
    PARAMS_CONFIGMAP,
    SERVER_DEPLOYMENT,
    SERVER_INSECURE_ANNOTATION,
    SERVER_INSECURE_KEY,
)

__all__ = [
    "ARGOCD_CRDS",
    "EXPECTED_WORKLOADS",
    "SERVER_INSECURE_ANNOTATION",
    "ApiCheck",
    "Status",
    "Workload",
    "check_api",
    "read_status",
    "summary",
    "wait_for_rollout",
]

ARGOCD_CRDS: Final = (
    "applications.argoproj.io",
    "applicationsets.argoproj.io",
    "appprojects.argoproj.io",
)
# The workloads of Argo CD's install.yaml (non-HA): each must exist and be ready.
EXPECTED_WORKLOADS: Final = (
    ("Deployment", "argocd-applicationset-controller"),
    ("Deployment", "argocd-dex-server"),
    ("Deployment", "argocd-notifications-controller"),
    ("Deployment", "argocd-redis"),
    ("Deployment", "argocd-repo-server"),
    ("Deployment", "argocd-server"),
    ("StatefulSet", "argocd-application-controller"),
)
EVENTS_PER_WORKLOAD: Final = 5

_EPOCH: Final = datetime.min.replace(tzinfo=UTC)


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Workload:
    kind: str  # Deployment or StatefulSet
    name: str
    ready: int
    desired: int

    @property
    def healthy(self) -> bool:
        # Scaled to 0 is not healthy: Argo CD needs every one of its components running.
        return self.desired > 0 and self.ready >= self.desired

    @property
    def state(self) -> str:
        if self.desired == 0:
            return "scaled to 0"
        return "ready" if self.healthy else "NOT READY"


@dataclass(frozen=True)
class Status:
    namespace: str
    namespace_exists: bool
    workloads: list[Workload] = field(default_factory=list)
    crds: dict[str, bool] = field(default_factory=dict)  # name -> Established
    ingress_hosts: list[str] = field(default_factory=list)
    server_insecure_configured: str | None = None  # argocd-cmd-params-cm
    server_insecure_running: str | None = None  # argocd-server's pod template annotation
    api: str = "not checked"
    api_ok: bool | None = None
    events: list[str] = field(default_factory=list)

    @property
    def missing_workloads(self) -> list[str]:
        found = {(w.kind, w.name) for w in self.workloads}
        return [name for kind, name in EXPECTED_WORKLOADS if (kind, name) not in found]

    @property
    def restart_pending(self) -> bool:
        return self.server_insecure_configured != self.server_insecure_running

    @property
    def problems(self) -> list[str]:
        """What is not healthy, one short item each (empty when healthy)."""
        if not self.namespace_exists:
            problems = [f"namespace {self.namespace}"]
        else:
            problems = self.missing_workloads + [w.name for w in self.workloads if not w.healthy]
        problems += [f"CRD {name}" for name in ARGOCD_CRDS if not self.crds.get(name)]
        if self.namespace_exists and self.restart_pending:
            problems.append(f"{SERVER_DEPLOYMENT} restart pending ({SERVER_INSECURE_KEY})")
        if self.api_ok is False:
            problems.append("API")
        return problems

    @property
    def healthy(self) -> bool:
        return not self.problems


# --------------------------------------------------------------------------- reading


def _not_found(exc: client.ApiException) -> bool:
    return exc.status == 404


def _namespace_exists(core: client.CoreV1Api, namespace: str) -> bool:
    try:
        core.read_namespace(namespace)
    except client.ApiException as exc:
        if _not_found(exc):
            return False
        raise
    return True


def _workloads(apps: client.AppsV1Api, namespace: str) -> tuple[list[Workload], Any]:
    """Deployments, then StatefulSets, by name; and the argocd-server Deployment (or None)."""
    workloads, server = [], None
    for kind, listing in (
        ("Deployment", apps.list_namespaced_deployment(namespace)),
        ("StatefulSet", apps.list_namespaced_stateful_set(namespace)),
    ):
        for item in sorted(listing.items, key=lambda obj: obj.metadata.name):
            ready = (item.status.ready_replicas if item.status else None) or 0
            # The API server defaults spec.replicas to 1; None only from a partial object.
            desired = item.spec.replicas if item.spec.replicas is not None else 1
            if kind == "Deployment" and not _rolled_out(item, desired):
                # Mid-rollout the old Pods are ready too, and a port-forward may reach one.
                ready = min(ready, max(desired - 1, 0))
            workloads.append(Workload(kind, item.metadata.name, ready, desired))
            if kind == "Deployment" and item.metadata.name == SERVER_DEPLOYMENT:
                server = item
    return workloads, server


def _rolled_out(deployment: Any, desired: int) -> bool:
    """``kubectl rollout status``'s test: the controller saw the last change, every replica is
    of the new template, and no Pod of an older one is left."""
    status = deployment.status
    if status is None:
        return False
    seen = (status.observed_generation or 0) >= (deployment.metadata.generation or 0)
    updated = status.updated_replicas or 0
    return seen and updated >= desired and (status.replicas or 0) <= updated


def _established(crd: Any) -> bool:
    conditions = (crd.status.conditions if crd.status else None) or []
    return any(c.type == "Established" and c.status == "True" for c in conditions)


def _crds(ext: client.ApiextensionsV1Api) -> dict[str, bool]:
    result = {}
    for name in ARGOCD_CRDS:
        try:
            result[name] = _established(ext.read_custom_resource_definition(name))
        except client.ApiException as exc:
            if not _not_found(exc):
                raise
            result[name] = False
    return result


def _ingress_hosts(net: client.NetworkingV1Api, namespace: str) -> list[str]:
    hosts: set[str] = set()
    for ingress in net.list_namespaced_ingress(namespace).items:
        for rule in (ingress.spec.rules if ingress.spec else None) or []:
            if rule.host:
                hosts.add(rule.host)
    return sorted(hosts)


def _configured_insecure(core: client.CoreV1Api, namespace: str) -> str | None:
    try:
        cm = core.read_namespaced_config_map(PARAMS_CONFIGMAP, namespace)
    except client.ApiException as exc:
        if _not_found(exc):
            return None
        raise
    return (cm.data or {}).get(SERVER_INSECURE_KEY)


def _running_insecure(server: Any) -> str | None:
    if server is None:
        return None
    metadata = server.spec.template.metadata
    return ((metadata.annotations if metadata else None) or {}).get(SERVER_INSECURE_ANNOTATION)


def _event_order(event: Any) -> tuple[datetime, int]:
    # Events written through events.k8s.io have event_time but no last_timestamp.
    series = event.series.last_observed_time if event.series else None
    metadata = event.metadata
    candidates = (
        event.last_timestamp,
        series,
        event.event_time,
        event.first_timestamp,
        metadata.creation_timestamp if metadata else None,
    )
    when = next((t for t in candidates if t is not None), _EPOCH)
    # Timestamps have whole seconds: within one, the (in practice numeric) resourceVersion
    # keeps a Deployment's "Scaled up" before its ReplicaSet's "Created pod".
    version = (metadata.resource_version if metadata else None) or ""
    return when, int(version) if version.isdigit() else 0


def _about(workload: Workload, kind: str, name: str) -> bool:
    """Whether an Event's involved object is the workload, one of its ReplicaSets or Pods."""
    if kind == workload.kind and name == workload.name:
        return True
    return kind in ("ReplicaSet", "Pod") and name.startswith(workload.name + "-")


def workload_events(
    events: Iterable[Any], workloads: Iterable[Workload], limit: int = EVENTS_PER_WORKLOAD
) -> list[str]:
    """``kind/name: reason: message`` of the latest ``limit`` Events of each workload given,
    oldest first within each workload."""
    ordered = sorted(events, key=_event_order)
    lines: list[str] = []
    for workload in workloads:
        about = [
            e
            for e in ordered
            if e.involved_object
            and _about(workload, e.involved_object.kind, e.involved_object.name)
        ]
        lines += [
            f"{e.involved_object.kind}/{e.involved_object.name}: {e.reason}: {one_line(e.message)}"
            for e in about[-limit:]
        ]
    return lines


def read_status(api: client.ApiClient, namespace: str, api_check: ApiCheck | None = None) -> Status:
    """Everything ``summary`` shows, read in one pass. A missing namespace is a normal result."""
    core = client.CoreV1Api(api)
    crds = _crds(client.ApiextensionsV1Api(api))
    api_ok, api_line = api_check() if api_check else (None, "not checked")
    if not _namespace_exists(core, namespace):
        return Status(namespace, False, crds=crds, api=api_line, api_ok=api_ok)
    workloads, server = _workloads(client.AppsV1Api(api), namespace)
    unhealthy = [w for w in workloads if not w.healthy]
    events = core.list_namespaced_event(namespace).items if unhealthy else []
    return Status(
        namespace=namespace,
        namespace_exists=True,
        workloads=workloads,
        crds=crds,
        ingress_hosts=_ingress_hosts(client.NetworkingV1Api(api), namespace),
        server_insecure_configured=_configured_insecure(core, namespace),
        server_insecure_running=_running_insecure(server),
        api=api_line,
        api_ok=api_ok,
        events=workload_events(events, unhealthy),
    )


def wait_for_rollout(
    api: client.ApiClient,
    namespace: str,
    timeout: float,
    interval: float = 2.0,
    ready: Callable[[Status], bool] = lambda status: status.healthy,
) -> Status:
    """Poll ``read_status`` until ``ready`` (default: healthy) or ``timeout`` seconds passed;
    return the last Status."""
    deadline = time.monotonic() + timeout
    while True:
        status = read_status(api, namespace)
        remaining = deadline - time.monotonic()
        if ready(status) or remaining <= 0:
            return status
        time.sleep(min(interval, remaining))


# --------------------------------------------------------------------------- presenting


def _value(value: str | None) -> str:
    return "not set" if value is None else value


def summary(status: Status) -> str:
    """One screen of plain text, one line per item; the verdict, then the events."""
    ns = status.namespace
    lines = [f"namespace {ns}: {'present' if status.namespace_exists else 'missing'}"]
    if status.namespace_exists:
        lines += [
            f"{w.kind} {w.name}: {w.ready}/{w.desired} ready  {w.state}" for w in status.workloads
        ]
        missing = set(status.missing_workloads)
        lines += [f"{kind} {name}: missing" for kind, name in EXPECTED_WORKLOADS if name in missing]
    for name in ARGOCD_CRDS:
        lines.append(f"CRD {name}: {'Established' if status.crds.get(name) else 'not Established'}")
    if status.namespace_exists:
        lines += [f"Ingress: {host}" for host in status.ingress_hosts] or ["Ingress: none"]
        insecure = (
            f"server.insecure: configured {_value(status.server_insecure_configured)}, "
            f"running {_value(status.server_insecure_running)}"
        )
        lines.append(insecure + (" (restart pending)" if status.restart_pending else ""))
    lines.append(f"API: {status.api}")
    problems = status.problems
    lines.append(f"not healthy: {', '.join(problems)}" if problems else "healthy")
    if status.events:
        lines.append("recent events of what is not ready:")
        lines += [f"  {event}" for event in status.events]
    return "\n".join(lines)


# --------------------------------------------------------------------------- CLI


def seconds(text: str) -> float:
    """argparse type: a number of seconds >= 0."""
    value = float(text)
    if not value >= 0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, got {text!r}")
    return value
