"""Facts about the clusters' admin kubeconfigs on their hosts. They hold credentials: read them
with ``facts.util.quiet.secret_fact``, which keeps their output out of pyinfra's logs."""

from __future__ import annotations

from pyinfra.api import FactBase, QuoteString, StringCommand
from typing_extensions import override

from tirosh.redact import Redacted


class KubeconfigFile(FactBase[Redacted | None]):
    """
    Returns the content of a kubeconfig on the host (read as root), or ``None`` when it does not
    exist. The value's ``repr`` hides it; the client key in it must never reach a log.

    .. code:: python

        secret_fact(host, KubeconfigFile, path="/etc/rancher/k3s/k3s.yaml")
    """

    @override
    def command(self, path: str) -> StringCommand:
        # Nothing reaches stdout unless the whole file was read: pyinfra prints a failed fact's
        # output, and a half-read file would be printed with it.
        quoted = QuoteString(path)
        return StringCommand(
            "if [ -e",
            quoted,
            "]; then",
            StringCommand('content="$(cat ', quoted, ')"', _separator=""),
            '&& printf "%s\\n" "$content"; fi',
        )

    @override
    def process(self, output: list[str]) -> Redacted | None:
        return Redacted("\n".join(output)) or None
