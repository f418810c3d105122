"""The local phase as a pyinfra operation: it runs on the operator's machine, after the remote one."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

from pyinfra import host, state
from pyinfra.api import FunctionCommand, OperationError, operation

from tirosh.errors import OperatorError
from tirosh.plan import Plan
from tirosh.site import Site, SiteError

logger = logging.getLogger("pyinfra")


class Phase(Protocol):
    """What this operation drives (``local.phase``): handed in by the deploy, so that
    ``operations`` never imports the operator-side code."""

    def plan(self, site: Site, environ: Mapping[str, str] | None = None) -> Plan: ...

    def apply(
        self,
        site: Site,
        environ: Mapping[str, str] | None = None,
        planned: Plan | None = None,
        wait: float | None = None,
    ) -> Plan: ...


def _plan(phase: Phase, site: Site) -> tuple[Plan, str | None]:
    """The phase's plan, or the reason it cannot be planned yet (no Argo CD, say)."""
    try:
        return phase.plan(site), None
    except Exception as error:
        return Plan(), _reason(error)


def _reason(error: BaseException) -> str:
    # An operator's error is one line already; the name of anything else says more than it.
    if isinstance(error, OperatorError | SiteError):
        return " ".join(str(error).split())
    return f"{type(error).__name__}: {' '.join(str(error).split())}"[:300]


def _run(phase: Phase, site: Site, planned: Plan | None, wait: int) -> None:
    # On a first deploy Argo CD was applied moments ago: the phase waits for its rollout.
    try:
        result = phase.apply(site, planned=planned, wait=wait)
    except (OperatorError, SiteError) as error:
        raise OperationError(f"local phase: {_reason(error)}") from None
    for line in result.lines():
        print(line, flush=True)
    if result.failed:
        raise OperationError("local phase: a connection Failed; its lines above say why")


@operation()
def converged(site: Site, phase: Phase):
    """
    Register the site's workload clusters and repositories in Argo CD and apply its Secrets.

    + site: the validated site (its ``clusters``, ``repositories``, ``templates``, ``secrets``
      and profile)
    + phase: the phase's plan and apply (``local.phase``, handed in by the deploy)

    Decided from the phase's plan against the live Argo CD and clusters: when every object is
    unchanged (or the site declares nothing) the operation does nothing; otherwise it applies
    the phase once, on the operator's machine, after the operations before it. On a first
    deploy Argo CD does not answer while the deploy is planned; the phase then runs when its
    turn comes, after waiting (up to ``argocd_rollout_timeout``) for Argo CD's rollout. Secrets
    and tokens never pass through pyinfra's arguments or output.

    **Example:**

    .. code:: python

        from local import phase

        local_phase.converged(name="Local phase: clusters, repositories, Secrets", site=site,
                              phase=phase)
    """
    planned, problem = _plan(phase, site)
    lines = planned.lines()
    if problem is None and not planned.pending:
        host.noop(lines[0] if len(lines) == 1 else "local phase: every object unchanged")
        return
    if not state.is_executing:
        for line in lines:
            logger.info(f"{host.print_prefix}  {line}")
        if problem is not None:
            logger.info(
                f"{host.print_prefix}  local phase: planned after the remote phase ({problem})"
            )
    known = planned if problem is None else None
    yield FunctionCommand(_run, (phase, site, known, site.argocd.rollout_timeout), {})
