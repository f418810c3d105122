"""Read files that hold credentials, without pyinfra ever printing them.

pyinfra prints every fact's output at ``-vvv``. A kubeconfig's client key must not appear there,
so these readers call the connector directly with printing off. They only read, like facts, and
are safe to call while pyinfra plans (``--dry``).
"""

from __future__ import annotations

from pyinfra.api import Host, QuoteString, StringCommand


class SecretReadError(RuntimeError):
    """The file exists but could not be read (permissions, sudo, connection)."""


def read_secret_file(host: Host, path: str) -> str | None:
    """
    Return the content of ``path`` on ``host`` as root, or ``None`` when the file does not exist.

    + host: the host to read from
    + path: absolute path of the file on the host
    """
    command = StringCommand("!", "test", "-e", QuoteString(path), "||", "cat", QuoteString(path))
    ok, output = host.run_shell_command(
        command, print_output=False, print_input=False, **_sudo_arguments(host)
    )
    if not ok:
        # stderr of cat names the path and the reason, never the content.
        raise SecretReadError(f"cannot read {path}: {' '.join(output.stderr_lines)}")
    text = "\n".join(output.stdout_lines)
    return text or None


def _sudo_arguments(host: Host) -> dict[str, object]:
    # Direct connector calls do not pick up the inventory's sudo settings (pyinfra #1839).
    arguments: dict[str, object] = {"_sudo": True}
    for key in ("_sudo_user", "_sudo_password", "_use_sudo_login", "_preserve_sudo_env"):
        value = host.data.get(key)
        if value is not None:
            arguments[key] = value
    return arguments
