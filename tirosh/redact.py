"""Values that keep their content for the code that needs them and hide it from every log."""

from __future__ import annotations


class Redacted(str):
    """A string whose ``repr`` never shows its content.

    pyinfra logs the SSH connection arguments with ``%r`` at ``--debug``
    (``Connecting to: host ({... 'password': ...})``); a ``Redacted`` password reaches paramiko
    intact and shows up there as ``'***'``.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "'***'"
