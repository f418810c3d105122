"""The deploy's local phase: after the remote one, from the operator's machine.

Registers the declared workload clusters, repositories and credential templates in Argo CD (as
its declarative Secrets, ``local.argocd.registration``), sets the ``[gitops]`` settings,
converges the AppProjects and Applications, and applies the registered Secrets, all read from
the ``Site`` (its ``clusters``, ``repositories``, ``templates``, ``gitops``, ``projects``,
``applications``, ``secrets``). ``plan`` reads what Argo CD and the clusters hold and returns
what would change (a ``tirosh.plan.Plan``; no Argo CD login is needed for it); ``apply`` makes
it so and returns what it did, with the connection states Argo CD reports, logging in to Argo
CD only when a part has something to change through its API. Every input (tokens,
keys, variables) is gathered before anything changes. A site that declares nothing skips the
phase in one line.

deploy.py runs it after the remote phase (``operations.local_phase``, handed this module by
``deploys.local_phase``): on a first deploy Argo CD has only just been applied, so ``apply``
first waits, bounded, for its rollout. ``make local/phase`` / ``local/plan`` run it alone.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass

from local.argocd import (
    access,
    applications,
    gitops_settings,
    initial_secret,
    registration,
    repositories,
    status,
)
from local.argocd.api import Client
from local.argocd.session import OnDemand, open_session, site_settings
from local.kube import client as kubeclient
from local.kube import secrets
from tirosh.errors import OperatorError
from tirosh.plan import Plan
from tirosh.site import Site

__all__ = ["API_WORKLOADS", "NotReady", "apply", "declares_nothing", "plan"]


class NotReady(OperatorError):
    """Argo CD did not become ready within the wait; the message names what is not ready."""


# What the phase's API calls need: the API itself, repository tests, and the session cache.
# Not Dex (sites without SSO may scale it to 0) nor the controllers.
API_WORKLOADS = ("argocd-server", "argocd-repo-server", "argocd-redis")


def declares_nothing(site: Site) -> bool:
    return not (
        site.clusters
        or site.repositories
        or site.templates
        or site.secrets
        or _apps(site)
        or site.access.declares_anything
    )


def _apps(site: Site) -> bool:
    """Whether argocd/applications.toml declares anything (projects, applications, [gitops])."""
    gitops = site.gitops
    declared = gitops.reconciliation_timeout or gitops.webhook_secret_env
    return bool(site.projects or site.applications or declared)


def _skipped(site: Site) -> Plan:
    note = f"local phase: site {site.name} declares no cluster, repository or Secret: skipped"
    return Plan(notes=[note])


@dataclass(frozen=True)
class _Inputs:
    """Every secret the phase needs, gathered before anything changes."""

    repository_secrets: dict[str, str | None]
    secret_values: dict[str, str]
    webhook_secret: str | None = None


def _inputs(site: Site, environ: Mapping[str, str]) -> _Inputs:
    found = secrets.secret_values(site, site.secrets, environ)
    prompt = site_settings(site, environ).prompts and sys.stdin.isatty()
    hook = gitops_settings.webhook_secret(site, environ)
    return _Inputs(repositories.gather_secrets(site, environ, prompt), found, hook)


def plan(site: Site, environ: Mapping[str, str] | None = None) -> Plan:
    """What the phase would change, object by object; changes nothing."""
    env = os.environ if environ is None else environ
    if declares_nothing(site):
        return _skipped(site)
    inputs = _inputs(site, env)
    result = registration.declare(site, env, inputs.repository_secrets, dry=True).plan()
    result.extend(gitops_settings.converge(site, inputs.webhook_secret, dry=True))
    result.extend(applications.converge(site, None, dry=True))
    result.extend(secrets.converge(site, site.secrets, inputs.secret_values, dry=True))
    return result.extend(access.plan(site, env))


def apply(
    site: Site,
    environ: Mapping[str, str] | None = None,
    planned: Plan | None = None,
    wait: float | None = None,
) -> Plan:
    """Converge the phase; what it did, with the connection states Argo CD reports.

    + planned: the plan of a dry run just before (the deploy's): parts with nothing pending
      in it are left alone; None: every part runs
    + wait: seconds to wait first for Argo CD's rollout (the deploy's first run)
    """
    env = os.environ if environ is None else environ
    if declares_nothing(site):
        return _skipped(site)
    inputs = _inputs(site, env)
    result = Plan()
    waiting = [wait]  # the rollout wait, before the first part that needs Argo CD's API

    def ready() -> None:
        if waiting[0] is not None:
            wait_for_argocd(site, waiting[0])
            waiting[0] = None

    def session() -> AbstractContextManager[Client]:
        ready()
        return argocd_session(site, env)

    registers = site.clusters or site.repositories or site.templates or _apps(site)
    if registers and _part_pending(planned, "argocd"):
        with ExitStack() as stack:
            argocd = OnDemand(stack, session)
            declared = registration.declare(site, env, inputs.repository_secrets)
            result.extend(registration.converge(site, declared, argocd))
            result.extend(gitops_settings.converge(site, inputs.webhook_secret))
            # Last: an application's repository and cluster are registered by then.
            result.extend(_applications(site, argocd))
    if _part_pending(planned, "secret"):
        result.extend(secrets.converge(site, site.secrets, inputs.secret_values, dry=False))
    if site.access.declares_anything and _part_pending(planned, "access"):
        ready()
        with open_session(site, env, lambda: initial_secret.read(site, env)) as (argocd_api, login):
            result.extend(access.apply(site, argocd_api, login, env))
    return result


def _applications(site: Site, argocd: OnDemand) -> Plan:
    """Projects and applications; the API (and a login) only when one differs."""
    found = applications.converge(site, None, dry=True)
    return applications.converge(site, argocd(), dry=False) if found.pending else found


@contextmanager
def argocd_session(
    site: Site, environ: Mapping[str, str], wait: float | None = None
) -> Iterator[Client]:
    """A logged-in Argo CD client; with ``wait``, first wait that long for its API to be up."""
    if wait is not None:
        wait_for_argocd(site, wait)
    with open_session(site, environ, lambda: initial_secret.read(site, environ)) as (argocd, _):
        yield argocd


def _part_pending(planned: Plan | None, part: str) -> bool:
    """Whether a part (``argocd``: clusters and repositories; ``secret``; ``access``) has
    work to do."""
    if planned is None or planned.notes:
        return True
    own = ("secret", "access")
    changes = [
        c
        for c in planned.changes
        if c.subject == part or (part == "argocd" and c.subject not in own)
    ]
    return any(change.changes for change in changes)


def _api_not_ready(state: status.Status) -> list[str]:
    waiting = [w.name for w in state.workloads if w.name in API_WORKLOADS and not w.healthy]
    missing = [name for name in state.missing_workloads if name in API_WORKLOADS]
    if not state.namespace_exists:
        return [f"namespace {state.namespace} missing"]
    return waiting + missing


def wait_for_argocd(site: Site, seconds: float) -> None:
    """Wait up to ``seconds`` for the Argo CD workloads the API needs to be ready (a Deployment
    mid-rollout is not: ``local.argocd.status`` counts it ready only once rolled out, so the
    old argocd-server Pod of the remote phase's restart is never the one logged in to)."""
    api = kubeclient.api_client(kubeclient.kubeconfig_files(site.kubeconfig), site.argocd_context)
    try:
        state = status.wait_for_rollout(
            api, site.argocd.namespace, seconds, ready=lambda s: not _api_not_ready(s)
        )
    finally:
        api.close()
    if problems := _api_not_ready(state):
        raise NotReady(
            f"Argo CD's API is not ready after {seconds:g} s (not ready: {', '.join(problems)}): "
            f"see make argocd/status SITE={site.name}"
        )
