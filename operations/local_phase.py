"""The local phase as a pyinfra operation: it runs on the operator's machine, after the remote one."""

from __future__ import annotations

import io
import logging
import re
from contextlib import redirect_stdout

from pyinfra import host, state
from pyinfra.api import FunctionCommand, OperationError, operation

from tirosh.site import Site

logger = logging.getLogger("pyinfra")
# local.phase prints one `<object>: <action> <what>` line per object (actions padded to 9).
_CHANGE = re.compile(r": (create|update|delete) ")


def _plan(site: Site) -> tuple[list[str], str | None]:
    """The phase's --dry lines, or the reason it cannot be planned yet (no Argo CD, say)."""
    from local import phase  # operator-side code: imported only when the operation runs

    out = io.StringIO()
    try:
        with redirect_stdout(out):
            code = phase.main([site.name, "--dry"])
    except Exception as error:  # noqa: BLE001 - any failure to plan means: run it and see
        return out.getvalue().splitlines(), f"{type(error).__name__}: {error}"
    lines = out.getvalue().splitlines()
    return lines, None if code == 0 else f"the plan exited {code}"


def _run(site_name: str, wait: int) -> None:
    from local import phase

    # On a first deploy Argo CD was applied moments ago: the phase waits for its rollout.
    code = phase.main([site_name, "--wait", str(wait)])
    if code != 0:
        raise OperationError(f"local phase exited {code}; its lines above say why")


@operation()
def converged(site: Site):
    """
    Register the site's workload clusters and repositories in Argo CD and apply its Secrets.

    + site: the validated site (its ``argocd/clusters.toml``, ``repositories.toml``,
      ``secrets.toml`` and profile)

    Decided from a dry run of ``local.phase`` against the live Argo CD and clusters: when every
    object is unchanged (or the site declares nothing) the operation does nothing; otherwise it
    runs the phase once, on the operator's machine, after the operations before it. On a first
    deploy Argo CD does not answer while the deploy is planned; the phase then runs when its
    turn comes, after waiting (up to ``argocd_rollout_timeout``) for Argo CD's rollout. Secrets and tokens never pass through pyinfra's arguments or output.

    **Example:**

    .. code:: python

        local_phase.converged(name="Local phase: clusters, repositories, Secrets", site=site)
    """
    lines, problem = _plan(site)
    if problem is None and not any(_CHANGE.search(line) for line in lines):
        host.noop(lines[0] if len(lines) == 1 else "local phase: every object unchanged")
        return
    if not state.is_executing:
        for line in lines:
            logger.info(f"{host.print_prefix}  {line}")
        if problem is not None:
            logger.info(
                f"{host.print_prefix}  local phase: planned after the remote phase ({problem})"
            )
    yield FunctionCommand(_run, (site.name, site.argocd.rollout_timeout), {})
