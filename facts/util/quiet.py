"""The quiet command runner: read from a host without pyinfra ever printing what comes back.

pyinfra prints every fact's output at ``-vvv``. A kubeconfig's client key, or a diff that could
touch a Secret, must not appear there, so these readers call the connector directly with
printing off. They only read, like facts, and are safe to call while pyinfra plans (``--dry``).
Secret-bearing facts (``facts/kubeconfig.py``) run through them as well.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from pyinfra.api import FactBase, Host, QuoteString, State, StringCommand

T = TypeVar("T")
# Per state: how many secret facts are being read, and the print setting to restore after.
_reading: dict[int, tuple[int, bool]] = {}


class QuietReadError(RuntimeError):
    """The command failed (permissions, sudo, connection); the message never holds its output."""


def read_secret_file(host: Host, path: str) -> str | None:
    """
    Return the content of ``path`` on ``host`` as root, or ``None`` when the file does not exist.

    + host: the host to read from
    + path: absolute path of the file on the host
    """
    command = StringCommand("!", "test", "-e", QuoteString(path), "||", "cat", QuoteString(path))
    return read_command_output(host, command) or None


def read_command_output(host: Host, command: StringCommand, stdin: str | None = None) -> str:
    """
    Run a read-only ``command`` as root on ``host`` and return its stdout, printing nothing.

    + host: the host to run on
    + command: the command; it must not change anything
    + stdin: text for the command's standard input (the only way secrets may travel to it)
    """
    arguments = _sudo_arguments(host)
    if stdin is not None:
        arguments["_stdin"] = stdin
    ok, output = host.run_shell_command(command, print_output=False, print_input=False, **arguments)
    if not ok:
        # stderr of kubectl or cat names the object or path and the reason, never the content.
        raise QuietReadError(f"{host.name}: {' '.join(output.stderr_lines)[-500:]}")
    return "\n".join(output.stdout_lines)


def secret_fact(host: Host, fact: type[FactBase[T]], **arguments: Any) -> T:
    """
    ``host.get_fact(fact, **arguments)`` with the fact's output kept out of pyinfra's log.

    + host: the host to read from
    + fact: a fact whose output holds credentials (``facts/kubeconfig.py``)
    + arguments: the fact's arguments

    A fact otherwise in every way (fixture-testable, run with the inventory's sudo settings);
    only printing its output at ``-vvv`` is switched off while it runs. The fact must print
    nothing when it fails: pyinfra shows a failed fact's output.
    """
    with _facts_unprinted(host.state):
        return host.get_fact(fact, **arguments)


@contextmanager
def _facts_unprinted(state: State) -> Iterator[None]:
    # Counted, not saved and restored: hosts read facts concurrently (gevent), and the first
    # to finish must not switch printing back on under another host's read.
    key = id(state)
    depth, printed = _reading.get(key, (0, bool(getattr(state, "print_fact_output", False))))
    _reading[key] = (depth + 1, printed)
    state.print_fact_output = False
    try:
        yield
    finally:
        depth, printed = _reading.pop(key)
        if depth > 1:
            _reading[key] = (depth - 1, printed)
        else:
            state.print_fact_output = printed


def _sudo_arguments(host: Host) -> dict[str, object]:
    # Direct connector calls do not pick up the inventory's sudo settings (pyinfra #1839).
    arguments: dict[str, object] = {"_sudo": True}
    for key in ("_sudo_user", "_sudo_password", "_use_sudo_login", "_preserve_sudo_env"):
        value = host.data.get(key)
        if value is not None:
            arguments[key] = value
    return arguments
