"""``make argocd/doctor SITE=...``: the runbook's troubleshooting checks (section 10) in one screen.

Both contexts reach their clusters and list their nodes; the Argo CD Pods run; the API answers
through the configured server; each declared cluster and repository is registered with a
Successful connection; the registered Secrets exist with their keys. Each failure names its
likely cause and the command that fixes it. Exit 1 when any check fails. Reads only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from kubernetes import client

from local.argocd import initial_secret
from local.argocd.api import ArgoCDError, Client
from local.argocd.session import endpoint, log_in, site_settings
from local.kube import client as kubeclient
from tirosh.clusters import ContextProblem, resolve_server
from tirosh.plan import connection_state
from tirosh.secrets_registry import desired_data
from tirosh.site import Site

__all__ = ["Check", "run_checks"]


@dataclass(frozen=True)
class Check:
    ok: bool
    what: str
    detail: str = ""
    fix: str = ""

    def __str__(self) -> str:
        text = f"{'ok  ' if self.ok else 'FAIL'}  {self.what}" + (
            f": {self.detail}" if self.detail else ""
        )
        return text + (f"\n      fix: {self.fix}" if not self.ok and self.fix else "")


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
        return [
            Check(False, f"{role} context {context}", f"{type(exc).__name__}: {exc}"[:300], fix)
        ]
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
    except Exception as exc:  # reported by the context check already; keep one line
        return Check(False, f"Argo CD Pods in {namespace}", type(exc).__name__)
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
    return checks


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


def run_checks(
    site: Site, environ: Mapping[str, str], emit: Callable[[Check], None] = print
) -> bool:
    checks: list[Check] = []

    def add(items: list[Check]) -> None:
        for item in items:
            checks.append(item)
            emit(item)

    add(
        _context(
            site, site.argocd_context, "management", f"make k3s/kubeconfig/merge SITE={site.name}"
        )
    )
    add([_pods(site)])
    config = site_settings(site, environ)
    try:
        with endpoint(site, config) as url:
            argocd = Client(url, verify=not config.insecure)
            add([Check(True, "Argo CD API", f"{url}: {argocd.version()}")])
            log_in(
                argocd, config, environ, lambda: initial_secret.read(site, environ), stdin_tty=False
            )
            add(_argocd_checks(site, environ, argocd))
    except ArgoCDError as exc:
        add([Check(False, "Argo CD API", str(exc), f"make argocd/status SITE={site.name}")])
    for declared in site.clusters:
        fix = f"make rke2/kubeconfig/merge SITE={site.name}, or CLUSTER_KUBECTX=<context>"
        add(_context(site, declared.context, f"workload ({declared.name})", fix))
    add(_secrets(site))
    return all(check.ok for check in checks)
