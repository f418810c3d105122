"""What every operator command of local/ starts and ends with: the environment and the validated
site, then its expected failures as one line on stderr and an exit code."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping

from kubernetes import client

from tirosh.site import Site, SiteError, load_or_report


def site_and_environ(
    name: str, environ: Mapping[str, str] | None
) -> tuple[Mapping[str, str], Site | None]:
    """``environ`` (default ``os.environ``) and the site, or None once its problems are printed."""
    env = os.environ if environ is None else environ
    return env, load_or_report(name, environ=env)


def reported(
    command: Callable[[], int],
    errors: tuple[type[BaseException], ...],
    prefix: str = "",
    context: str | None = None,
) -> int:
    """Run ``command``; what an operator can fix becomes one line on stderr, not a traceback.

    + command: the command's body, returning its exit code
    + errors: the exceptions whose message says what to do (exit 1)
    + prefix: put before each line ("local phase: ")
    + context: the kubeconfig context a Kubernetes API error names

    A site file problem exits 2 (with its ``file: key: problem`` lines), a Kubernetes API error
    exits 1 with its status and reason only (its body may quote a Secret).
    """
    try:
        return command()
    except SiteError as exc:
        print(exc, file=sys.stderr)
        return 2
    except errors as exc:
        print(f"{prefix}{exc}", file=sys.stderr)
        return 1
    except client.ApiException as exc:
        where = f" (context {context})" if context else ""
        print(f"{prefix}Kubernetes API{where}: {exc.status} {exc.reason}", file=sys.stderr)
        return 1
