"""What every operator command of local/ starts with: the environment and the validated site."""

from __future__ import annotations

import os
from collections.abc import Mapping

from tirosh.site import Site, load_or_report


def site_and_environ(
    name: str, environ: Mapping[str, str] | None
) -> tuple[Mapping[str, str], Site | None]:
    """``environ`` (default ``os.environ``) and the site, or None once its problems are printed."""
    env = os.environ if environ is None else environ
    return env, load_or_report(name, environ=env)
