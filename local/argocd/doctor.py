"""``make argocd/doctor SITE=...``: the runbook's troubleshooting checks (section 10) in one screen.

Both contexts reach their clusters and list their nodes; the Argo CD Pods run; the API answers
through the configured server; each declared cluster and repository is registered with a
Successful connection; each application is Synced and Healthy (Argo CD's conditions shown) and
references only registered repositories and clusters; the registered Secrets exist with their
keys. Each failure names its likely cause and the command that fixes it. Exit 1 when any check fails. Reads only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import urllib3
from kubernetes import client

from local.argocd import app_doctor, initial_secret
from local.argocd.access_doctor import access_checks
from local.argocd.api import ArgoCDError, Client
from local.argocd.check import Check
from local.argocd.session import endpoint, log_in, site_settings
from local.kube import client as kubeclient
from tirosh.answers import sanitized
from tirosh.clusters import ContextProblem, resolve_server
from tirosh.errors import OperatorError
from tirosh.plan import connection_state
from tirosh.secrets_registry import desired_data
from tirosh.site import Site

__all__ = ["Check", "run_checks"]


def _context(site: Site, context: str, role: str, fix: str) -> list[Check]:
    try:
        api = kubeclient.api_client(site.kubeconfig, context)
    except kubeclient.KubeconfigError as exc:
        return [Check(False, f"{role} context {context}", str(exc), fix)]
    try:
        version = client.VersionApi(api).get_code().git_version
        nodes = client.CoreV1Api(api).list_node().items
        ready = [
            n.metadata.name
            for n in nodes
            if any(c.type == "Ready" and c.status == "True" for c in (n.status.conditions or []))
        ]
        return [
            Check(
                True,
                f"{role} context {context}",
                f"API {api.configuration.host} answers ({version})",
            ),
            Check(
                bool(nodes) and len(ready) == len(nodes),
                f"{role} nodes",
                f"{len(ready)}/{len(nodes)} Ready",
                "check the node (kubelet) on the VM: make k3s/status SITE=" + site.name,
            ),
        ]
    except client.ApiException as exc:
        return [Check(False, f"{role} context {context}", f"{exc.status} {exc.reason}", fix)]
    except Exception as exc:  # urllib3 connection, TLS and timeout errors
        return [Check(False, f"{role} context {context}", _why(exc), fix)]
    finally:
        api.close()


def _pods(site: Site) -> Check:
    namespace = site.argocd.namespace
    try:
        api = kubeclient.api_client(site.kubeconfig, site.argocd_context)
        try:
            pods = client.CoreV1Api(api).list_namespaced_pod(namespace).items
        finally:
            api.close()
    except Exception as exc:  # the context check above says why at length; keep one line
        fix = f"the management context first (make k3s/kubeconfig/merge SITE={site.name})"
        return Check(False, f"Argo CD Pods in {namespace}", type(exc).__name__, fix)
    running = [p for p in pods if p.status and p.status.phase == "Running"]
    detail = f"{len(running)}/{len(pods)} Running"
    fix = f"make argocd/status SITE={site.name} (events of the Pods not running)"
    return Check(
        bool(pods) and len(running) == len(pods), f"Argo CD Pods in {namespace}", detail, fix
    )


def _argocd_checks(site: Site, environ: Mapping[str, str], argocd: Client) -> list[Check]:
    checks = []
    document = kubeclient.read_kubeconfig(site.kubeconfig) or {}  # absent: no context in it
    for declared in site.clusters:
        what = f"cluster {declared.name}"
        try:
            server = resolve_server(document, site.kubeconfig, declared, site.argocd_context)
        except ContextProblem as exc:
            checks.append(
                Check(
                    False,
                    what,
                    str(exc),
                    f"fix the context, then make argocd/cluster/add SITE={site.name}",
                )
            )
            continue
        found = argocd.get_cluster(server)
        if found is None:
            checks.append(
                Check(
                    False,
                    what,
                    f"not registered ({server})",
                    f"make argocd/cluster/add SITE={site.name}",
                )
            )
            continue
        status, message = connection_state(found)
        checks.append(
            Check(
                status != "Failed",
                what,
                f"{server}: {status} {message}".strip(),
                f"make argocd/cluster/rotate SITE={site.name} (token), or check the route to {server}",
            )
        )
    for repository in site.repositories:
        found = argocd.get_repository(repository.url)
        what = f"repository {repository.name}"
        if found is None:
            checks.append(
                Check(False, what, "not registered", f"make argocd/repo/add SITE={site.name}")
            )
            continue
        status, message = connection_state(found)
        checks.append(
            Check(
                status != "Failed",
                what,
                f"{status} {message}".strip(),
                f"check the token/key and make argocd/repo/add SITE={site.name}",
            )
        )
    return checks + [Check(*finding) for finding in app_doctor.application_checks(site, argocd)]


def _secrets(site: Site) -> list[Check]:
    checks: list[Check] = []
    registry = site.secrets
    if not registry:
        return checks
    api = kubeclient.api_client(site.kubeconfig, site.argocd_context)
    try:
        core = client.CoreV1Api(api)
        for secret in registry:
            what = f"Secret {secret.namespace}/{secret.name}"
            fix = f"make kubernetes/secret/apply SITE={site.name} KUBERNETES_SECRET={secret.name}"
            try:
                found = core.read_namespaced_secret(secret.name, secret.namespace)
            except client.ApiException as exc:
                checks.append(
                    Check(
                        False,
                        what,
                        "missing" if exc.status == 404 else f"{exc.status} {exc.reason}",
                        fix,
                    )
                )
                continue
            wanted = desired_data(secret, {v: "x" for v in secret.variables})
            missing = [k for k in wanted if k not in (found.data or {})]
            ok = not missing and found.type == secret.type
            detail = f"type {found.type}" + (
                f", keys missing: {', '.join(missing)}" if missing else ""
            )
            checks.append(Check(ok, what, detail, fix))
    finally:
        api.close()
    return checks


def _guarded(what: str, fix: str, check: Callable[[], list[Check]]) -> list[Check]:
    """One section of checks; whatever it raises is its own failure, with its fix, and the
    next section still runs (the doctor exists for the states where things are broken)."""
    try:
        return check()
    except OperatorError as exc:
        return [Check(False, what, sanitized(str(exc), limit=400), fix)]
    except client.ApiException as exc:
        return [Check(False, what, f"Kubernetes API: {exc.status} {exc.reason}", fix)]
    except Exception as exc:  # urllib3 connection, TLS, timeouts: reported, never a traceback
        return [Check(False, what, _why(exc), fix)]


def _why(exc: BaseException) -> str:
    """One short line for a connection failure of the kubernetes client (urllib3 nests the
    real reason in MaxRetryError.reason)."""
    reason = getattr(exc, "reason", None)
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and reason is not None:
        url = f"{exc.pool.host}:{exc.pool.port}" if exc.pool is not None else "the API"
        text = str(getattr(reason, "args", [reason])[-1] or reason)
        return sanitized(f"cannot reach {url}: {text.rsplit(': ', 1)[-1]}", limit=200)
    return sanitized(f"{type(exc).__name__}: {exc}", limit=300)


def _argocd_api(site: Site, environ: Mapping[str, str]) -> list[Check]:
    config = site_settings(site, environ)
    checks: list[Check] = []
    try:
        with endpoint(site, config) as url:
            argocd = Client(url, verify=not config.insecure)
            checks.append(Check(True, "Argo CD API", f"{url}: {argocd.version()}"))
            log_in(
                argocd, config, environ, lambda: initial_secret.read(site, environ), stdin_tty=False
            )
            checks += _argocd_checks(site, environ, argocd)
    except ArgoCDError as exc:
        checks.append(Check(False, "Argo CD API", str(exc), f"make argocd/status SITE={site.name}"))
    return checks


def run_checks(
    site: Site, environ: Mapping[str, str], emit: Callable[[Check], None] = print
) -> bool:
    """Run every check, each section on its own; True when all passed."""
    checks: list[Check] = []
    merge = f"make k3s/kubeconfig/merge SITE={site.name}"
    status = f"make argocd/status SITE={site.name}"
    sections: list[tuple[str, str, Callable[[], list[Check]]]] = [
        (
            f"management context {site.argocd_context}",
            merge,
            lambda: _context(site, site.argocd_context, "management", merge),
        ),
        (f"Argo CD Pods in {site.argocd.namespace}", status, lambda: [_pods(site)]),
        ("Argo CD API", status, lambda: _argocd_api(site, environ)),
    ]
    for declared in site.clusters:
        fix = f"make rke2/kubeconfig/merge SITE={site.name}, or CLUSTER_KUBECTX=<context>"
        role = f"workload ({declared.name})"
        sections.append(
            (
                f"{role} context {declared.context}",
                fix,
                lambda d=declared, f=fix, r=role: _context(site, d.context, r, f),  # type: ignore[misc]
            )
        )
    sections.append(
        (
            "registered Secrets",
            f"{merge}, then make kubernetes/secret/apply SITE={site.name}",
            lambda: _secrets(site),
        )
    )
    if site.access.declares_anything:
        sections.append(
            ("access", f"make local/phase SITE={site.name}", lambda: access_checks(site, environ))
        )
    for what, fix, check in sections:
        for item in _guarded(what, fix, check):
            checks.append(item)
            emit(item)
    return all(check.ok for check in checks)
