"""The deploy's local phase: after the remote one, from the operator's machine.

Registers the declared workload clusters, repositories and credential templates in Argo CD and
applies the registered Secrets. Which parts run is decided by what the site declares; a site
that declares nothing skips the phase in one line. Every input (tokens, keys, variables) is
gathered before anything changes. ``dry`` lists per object what would be created, updated or
left unchanged, and changes nothing (no Argo CD login is needed for it).

deploy.py runs ``python -m local.phase SITE --wait SECONDS`` after the remote phase (through
``operations.local_phase``): on a first deploy Argo CD has only just been applied, so the phase
first waits, bounded, for its rollout. ``python -m local.phase SITE [--dry]`` runs it alone.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kubernetes import client

from local import cli, cluster, initial_secret, kubeclient, repo, secrets, status
from local.argocd_api import ArgoCDError
from local.cluster_rbac import TokenTimeout
from local.session import open_session, site_settings
from tirosh.clusters import ContextProblem, load_clusters
from tirosh.repositories import load_repositories
from tirosh.secrets_registry import MissingVariables, load_secrets, values
from tirosh.site import Site

__all__ = ["Declared", "declared", "main", "run"]


@dataclass(frozen=True)
class Declared:
    clusters: int
    repositories: int
    secrets: int

    @property
    def nothing(self) -> bool:
        return not (self.clusters or self.repositories or self.secrets)


def declared(site: Site, environ: Mapping[str, str]) -> Declared:
    """What the site declares for this phase (SiteError when a file is invalid)."""
    clusters = load_clusters(
        site.root, site.argocd.cluster_context, site.argocd.cluster_name, environ
    )
    repositories, templates = load_repositories(site.root, environ)
    return Declared(len(clusters), len(repositories) + len(templates), len(load_secrets(site.root)))


def _secrets(site: Site, environ: Mapping[str, str], dry: bool) -> int:
    registry = load_secrets(site.root)
    if not registry:
        return 0
    found = values(registry, environ, secrets.read_dotenv(site.repo_root))
    api = kubeclient.api_client(site.kubeconfig, site.argocd_context)
    try:
        core = client.CoreV1Api(api)
        planned = secrets.plan_secrets(core, registry, found)
        for _, _, changes in planned:
            for change in changes:
                print(f"secret: {change}")
        if not dry:
            secrets.apply_secrets(core, planned)
    finally:
        api.close()
    return 0


class NotReady(Exception):
    """Argo CD did not become ready within the wait; the message names what is not ready."""


# What the phase's API calls need: the API itself, repository tests, and the session cache.
# Not Dex (sites without SSO may scale it to 0) nor the controllers.
API_WORKLOADS = ("argocd-server", "argocd-repo-server", "argocd-redis")


def _api_not_ready(state: status.Status) -> list[str]:
    waiting = [w.name for w in state.workloads if w.name in API_WORKLOADS and not w.healthy]
    missing = [name for name in state.missing_workloads if name in API_WORKLOADS]
    if not state.namespace_exists:
        return [f"namespace {state.namespace} missing"]
    return waiting + missing


def wait_for_argocd(site: Site, seconds: float) -> None:
    """Wait up to ``seconds`` for the Argo CD workloads the API needs to be ready."""
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


def run(
    site: Site,
    dry: bool = False,
    environ: Mapping[str, str] | None = None,
    wait: float | None = None,
) -> int:
    """Run the phase; print one line per object; return the exit code (0: all good).

    ``wait``: seconds to wait first for Argo CD's rollout (not for a dry run, which reads only).
    """
    env = os.environ if environ is None else environ
    what = declared(site, env)
    if what.nothing:
        print(f"local phase: site {site.name} declares no cluster, repository or Secret: skipped")
        return 0
    # Inputs first: a missing variable or token stops the phase before anything changes.
    registry = load_secrets(site.root)
    if registry:
        values(registry, env, secrets.read_dotenv(site.repo_root))
    repositories, templates = load_repositories(site.root, env)
    prompt = site_settings(site, env).prompts and sys.stdin.isatty()
    repo_secrets = repo.gather_secrets(repositories, templates, env, prompt)
    code = 0
    if dry:
        code |= cluster.report(cluster.register_clusters(site, None, env, dry=True))
        code |= repo.report(repo.register_repositories(site, None, env, prompt, True, repo_secrets))
        return code | _secrets(site, env, dry=True)
    if what.clusters or what.repositories:
        if wait is not None:
            wait_for_argocd(site, wait)
        with open_session(site, env, lambda: initial_secret.read(site, env)) as (argocd, _):
            code |= cluster.report(cluster.register_clusters(site, argocd, env))
            code |= repo.report(
                repo.register_repositories(site, argocd, env, prompt, False, repo_secrets)
            )
    return code | _secrets(site, env, dry=False)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.phase", description=__doc__)
    parser.add_argument("site")
    parser.add_argument("--dry", action="store_true")
    parser.add_argument(
        "--wait",
        type=status.seconds,
        metavar="SECONDS",
        help="first wait up to SECONDS for Argo CD's rollout (the deploy passes its timeout)",
    )
    args = parser.parse_args(argv)
    env, site = cli.site_and_environ(args.site, environ)
    if site is None:
        return 2
    errors = (
        ArgoCDError,
        ContextProblem,
        MissingVariables,
        repo.MissingSecret,
        kubeclient.KubeconfigError,
        TokenTimeout,
        NotReady,
        ValueError,  # an operator's file (.env, a CA file) that cannot be read
    )
    return cli.reported(lambda: run(site, args.dry, env, args.wait), errors, "local phase: ")


if __name__ == "__main__":
    raise SystemExit(main())
