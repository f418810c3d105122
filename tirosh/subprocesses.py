"""What a child process of the operator-side tools gets: only what it needs.

A child (kubectl, ssh-keygen, git) inherits nothing by default: the operator's environment
holds ARGOCD_PASSWORD, ARGOCD_AUTH_TOKEN, repository and registry tokens, which a child could
pass on (kubectl exec plugins) or expose in ``/proc/<pid>/environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final

__all__ = ["PASSED_THROUGH", "minimal_environment"]

# Where programs are, which language and time zone they speak, where their own files are, and
# the proxy the operator reaches the clusters through.
PASSED_THROUGH: Final = (
    "PATH",
    "HOME",
    "USER",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "XDG_CACHE_HOME",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "NO_PROXY",
    "https_proxy",
    "http_proxy",
    "no_proxy",
)


def minimal_environment(
    extra: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The passed-through variables of ``environ`` (default ``os.environ``), plus ``extra``."""
    source = os.environ if environ is None else environ
    env = {name: source[name] for name in PASSED_THROUGH if name in source}
    env.update(extra or {})
    return env
