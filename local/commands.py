"""The operator commands, one function each, named as their Make targets.

Each gets an ``Invocation`` (the validated site, the environment, its options) from the frame
in ``local.cli`` and returns its exit code; expected failures are raised as
``tirosh.errors.OperatorError`` and become one line there.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack

import urllib3
from kubernetes import client

from local import cli, phase
from local.argocd import (
    app_commands,
    doctor,
    initial_secret,
    password,
    registration,
    repositories,
    status,
)
from local.argocd.api_check import site_api_check
from local.argocd.session import OnDemand, open_session, site_settings
from local.cli import Invocation, command, option
from local.kube import client as kubeclient
from local.kube import port_forward, secrets
from tirosh.errors import OperatorError
from tirosh.plan import Plan

_DRY = option("--dry", action="store_true", help="only say what would change")


def _print(plan: Plan) -> int:
    for line in plan.lines():
        print(line, flush=True)
    return 1 if plan.failed else 0


def _initial(run: Invocation) -> Callable[[], str | None]:
    """Where the login takes the initial admin password from, when it needs it."""
    return lambda: initial_secret.read(run.site, run.environ)


# --------------------------------------------------------------------------- Argo CD


@command(
    "argocd/status",
    "Argo CD health on the management cluster (exit 0 when healthy)",
    option(
        "--wait",
        type=status.seconds,
        metavar="SECONDS",
        help="first wait up to SECONDS for every workload to become ready",
    ),
)
def argocd_status(run: Invocation) -> int:
    site = run.site
    context, namespace = site.argocd_context, site.argocd.namespace
    try:
        # As kubectl: the site's kubeconfig, then the rest of a KUBECONFIG list.
        api = kubeclient.api_client(kubeclient.kubeconfig_files(site.kubeconfig), context)
    except (kubeclient.KubeconfigError, OSError) as exc:
        print(f"kubeconfig {site.kubeconfig}, context {context}: {exc}", file=sys.stderr)
        return 2
    print(f"site {site.name}: context {context}, kubeconfig {site.kubeconfig}", flush=True)
    try:
        if run.args.wait is not None:
            print(f"waiting up to {run.args.wait:g} s for the Argo CD rollout...", flush=True)
            status.wait_for_rollout(api, namespace, run.args.wait)
        state = status.read_status(api, namespace, site_api_check(site))
    except (client.ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
        print(f"cannot read Argo CD's state through context {context}: {exc}", file=sys.stderr)
        return 1
    finally:
        api.close()
    print(status.summary(state))
    return 0 if state.healthy else 1


@command("argocd/port-forward", "svc/argocd-server on 127.0.0.1:8080 (foreground)")
def argocd_port_forward(run: Invocation) -> int:
    site = run.site
    context, namespace = site.argocd_context, site.argocd.namespace
    files = kubeclient.kubeconfig_files(site.kubeconfig)
    try:
        pod = port_forward.server_pod(files, context, namespace)
    except kubeclient.KubeconfigError as exc:
        print(f"kubeconfig {site.kubeconfig}, context {context}: {exc}", file=sys.stderr)
        return 2
    except (client.ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
        print(f"cannot list argocd-server pods (context {context}): {exc}", file=sys.stderr)
        return 1
    local_port = port_forward.DEFAULT_LOCAL_PORT
    argv = port_forward.port_forward_command(
        port_forward.DEFAULT_KUBECTL, files, context, namespace, local_port, pod
    )
    print(
        f"argocd-server on http://{port_forward.LOOPBACK}:{local_port} (Ctrl-C stops)", flush=True
    )
    # Foreground: kubectl replaces this process, so Ctrl-C and its exit code are kubectl's.
    os.execve(argv[0], argv, port_forward.kubectl_environment(files))
    return 1  # pragma: no cover - execve does not return


@command("argocd/password", "print the initial admin password (argocd-initial-admin-secret)")
def argocd_password(run: Invocation) -> int:
    return password.show(run.site, run.environ)


@command(
    "argocd/password/update",
    "change the admin password (typed twice, or ARGOCD_NEW_PASSWORD)",
    option("--yes", action="store_true", help="delete the initial Secret, no question"),
)
def argocd_password_update(run: Invocation) -> int:
    return password.update(run.site, run.environ, run.args.yes)


def _register(run: Invocation, only: str, rotate: bool = False) -> int:
    """Register the site's clusters or repositories (``only``), or say what would change."""
    site = run.site
    found = (
        repositories.gather_secrets(site, run.environ, _prompt(run)) if only != "clusters" else {}
    )
    declared = registration.declare(site, run.environ, found, rotate, dry=run.args.dry, only=only)
    if run.args.dry:
        return _print(declared.plan())
    with ExitStack() as stack:
        argocd = OnDemand(stack, lambda: phase.argocd_session(site, run.environ))
        result = registration.converge(site, declared, argocd)
    if not declared.items:
        print(
            f"site {site.name}: no {'workload cluster' if only == 'clusters' else 'repository'} declared"
        )
    return _print(result)


@command("argocd/cluster/add", "register the workload cluster(s) with a ServiceAccount token", _DRY)
def argocd_cluster_add(run: Invocation) -> int:
    return _register(run, "clusters")


@command("argocd/cluster/rotate", "revoke the cluster token and register a new one", _DRY)
def argocd_cluster_rotate(run: Invocation) -> int:
    return _register(run, "clusters", rotate=True)


def _prompt(run: Invocation) -> bool:
    return site_settings(run.site, run.environ).prompts and sys.stdin.isatty()


@command("argocd/repo/add", "register the site's repositories and credential templates", _DRY)
def argocd_repo_add(run: Invocation) -> int:
    return _register(run, "repositories")


@command("argocd/repo/list", "the repositories Argo CD has, against the site's")
def argocd_repo_list(run: Invocation) -> int:
    with open_session(run.site, run.environ, _initial(run)) as (argocd, _):
        return repositories.list_repositories(run.site, argocd)


_APP = option("--app", help="the application (default: APP)")


def _app(run: Invocation) -> str:
    name = run.args.app or run.environ.get("APP") or ""
    if not name:
        raise OperatorError("name the application: APP=<name> (make argocd/app/list)")
    return name


@command("argocd/app/list", "sync, health and revision of every application, against the site's")
def argocd_app_list(run: Invocation) -> int:
    with open_session(run.site, run.environ, _initial(run)) as (argocd, _):
        return app_commands.list_applications(run.site, argocd)


@command(
    "argocd/app/sync",
    "sync one application (APP=) and wait for Argo CD's result: the manual gate",
    _APP,
    option("--timeout", type=status.seconds, default=300.0, metavar="SECONDS"),
    option("--prune", action="store_true", help="also delete what Git no longer has"),
)
def argocd_app_sync(run: Invocation) -> int:
    name = _app(run)
    with open_session(run.site, run.environ, _initial(run)) as (argocd, _):
        return app_commands.sync_application(argocd, name, run.args.timeout, prune=run.args.prune)


@command(
    "argocd/app/delete",
    "delete one application (APP=), not cascading unless --cascade; asks unless --yes",
    _APP,
    option("--yes", action="store_true", help="delete without asking"),
    option("--cascade", action="store_true", help="also delete its resources on the cluster"),
)
def argocd_app_delete(run: Invocation) -> int:
    name = _app(run)
    ask = input if sys.stdin.isatty() else None
    with open_session(run.site, run.environ, _initial(run)) as (argocd, _):
        return app_commands.delete_application(argocd, name, run.args.cascade, run.args.yes, ask)


@command("argocd/doctor", "the runbook's troubleshooting checks in one screen")
def argocd_doctor(run: Invocation) -> int:
    healthy = doctor.run_checks(run.site, run.environ, lambda check: print(check, flush=True))
    print("all checks passed" if healthy else "some checks failed (fixes above)")
    return 0 if healthy else 1


# --------------------------------------------------------------------------- Kubernetes


_SECRET = option("--secret", help="only this Secret (default: KUBERNETES_SECRET, else all)")


def _secrets(run: Invocation, apply: bool) -> int:
    site = run.site
    name = run.args.secret or run.environ.get("KUBERNETES_SECRET") or None
    chosen = secrets.selected(site, name)
    if not chosen:
        print(f"site {site.name}: no Secret declared")
        return 0
    result = secrets.converge(
        site, chosen, secrets.secret_values(site, chosen, run.environ), not apply
    )
    for change in result.changes:
        print(change.text)
    if apply:
        applied = secrets.changed_count(result)
        print(f"applied {applied} Secret(s) through context {site.argocd_context}")
    return 0


@command(
    "kubernetes/secret/plan",
    "what kubernetes/secret/apply would change",
    _SECRET,
    management_api=True,
)
def kubernetes_secret_plan(run: Invocation) -> int:
    return _secrets(run, apply=False)


@command(
    "kubernetes/secret/apply",
    "apply the site's Secrets from the environment / .env",
    _SECRET,
    management_api=True,
)
def kubernetes_secret_apply(run: Invocation) -> int:
    return _secrets(run, apply=True)


# --------------------------------------------------------------------------- the phase


@command(
    "local/phase",
    "the deploy's local phase alone: clusters, repositories, Secrets",
    _DRY,
    option(
        "--wait",
        type=status.seconds,
        metavar="SECONDS",
        help="first wait up to SECONDS for Argo CD's rollout (the deploy passes its timeout)",
    ),
    prefix="local phase: ",
)
def local_phase(run: Invocation) -> int:
    if run.args.dry:
        return _print(phase.plan(run.site, run.environ))
    return _print(phase.apply(run.site, run.environ, wait=run.args.wait))


# --------------------------------------------------------------------------- Proxmox VE


_PROXMOX = (
    option(
        "--restart",
        action="store_true",
        help="allow shutting down and starting a running VM for a change",
    ),
    option("--dry", action="store_true", help="inventory: show the diff only"),
    option(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log each API request (-vv: with its form fields)",
    ),
)


def _proxmox(run: Invocation, name: str) -> int:
    # proxmoxer and requests: imported only by the commands that talk to Proxmox VE.
    from local.proxmox import commands as proxmox

    options = proxmox.Options(run.args.restart, run.args.dry, run.args.verbose)
    body: proxmox.Command = getattr(proxmox, name)
    return body(run.site, run.environ, options, sys.stdout, sys.stderr)


@command(
    "proxmox/vms/plan",
    "per VM of vms.tfvars: create / update (field by field) / unchanged, or refused",
    *_PROXMOX,
    prefix="proxmox: ",
)
def proxmox_vms_plan(run: Invocation) -> int:
    return _proxmox(run, "run_plan")


@command(
    "proxmox/vms/apply",
    "clone, configure, grow and start the declared VMs; show their addresses",
    *_PROXMOX,
    prefix="proxmox: ",
)
def proxmox_vms_apply(run: Invocation) -> int:
    return _proxmox(run, "run_apply")


@command(
    "proxmox/vms/inventory",
    "write the guest agents' addresses into inventory.toml (a diff and a backup first)",
    *_PROXMOX,
    prefix="proxmox: ",
)
def proxmox_vms_inventory(run: Invocation) -> int:
    return _proxmox(run, "run_inventory")


# The access commands (argocd/account/token*, argocd/access/check) declare themselves.
from local import access_commands  # noqa: E402, F401


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """``python -m local COMMAND SITE [options]``: every command above, through the frame."""
    return cli.main(argv, environ)
