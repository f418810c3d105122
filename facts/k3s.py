"""Facts about k3s on the management VM."""

from __future__ import annotations

from pyinfra.api import FactBase, QuoteString, StringCommand
from typing_extensions import override

from tirosh import k3s


class K3sVersion(FactBase[str | None]):
    """
    Returns the version the installed k3s binary reports, or ``None`` when it is not installed.

    .. code:: python

        host.get_fact(K3sVersion)  # "v1.34.3+k3s1"
    """

    @override
    def requires_command(self, path: str = k3s.BINARY_PATH) -> str:
        return path

    @override
    def command(self, path: str = k3s.BINARY_PATH) -> StringCommand:
        return StringCommand(QuoteString(path), "--version")

    @override
    def process(self, output: list[str]) -> str | None:
        return k3s.parse_version("\n".join(output))
