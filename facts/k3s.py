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


class K3sStale(FactBase[list[str]]):
    """
    Returns why the running k3s is not running what is installed: files changed since it started.

    Lists the binary, config or unit paths newer than the k3s process, and ``daemon-reload``
    when systemd has not read the unit yet. Empty when k3s is not running or is up to date; a
    run interrupted between writing a file and restarting k3s leaves a non-empty list.

    .. code:: python

        host.get_fact(K3sStale)  # ["/etc/rancher/k3s/config.yaml"]
    """

    default = list

    @override
    def command(self) -> str:
        files = " ".join((k3s.BINARY_PATH, k3s.CONFIG_PATH, k3s.UNIT_PATH))
        return (
            'pid="$(systemctl show -p MainPID --value k3s 2>/dev/null)"; '
            'if [ "${pid:-0}" -gt 0 ] 2>/dev/null; then '
            'started=$(( $(date +%s) - $(ps -o etimes= -p "$pid") )); '
            f"for f in {files}; do "
            '[ "$(stat -c %Y "$f" 2>/dev/null || echo 0)" -gt "$started" ] && echo "$f"; '
            "done; "
            '[ "$(systemctl show -p NeedDaemonReload --value k3s)" = yes ] && echo daemon-reload; '
            "fi; true"
        )

    @override
    def process(self, output: list[str]) -> list[str]:
        return [line.strip() for line in output if line.strip()]
