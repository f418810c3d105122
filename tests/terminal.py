"""Run a command with a pseudo-terminal as its stdin, stdout and stderr, as a person would."""

from __future__ import annotations

import os
import pty


def run_in_a_terminal(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Exit code and everything the command wrote (CRLF as LF). ``pty.fork``, not subprocess:
    the tests' gevent-patched subprocess keeps a copy of a pty handed to it, so the terminal
    would never report its end."""
    pid, leader = pty.fork()
    if pid == 0:  # the child: exec at once, nothing else
        os.execve(argv[0], argv, env)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the command closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode().replace("\r\n", "\n")
