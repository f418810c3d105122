"""The ``argocd`` CLI's login words an operator writes in ``argocd.login_args``, parsed.

A module of its own, below the site model (which checks them at validation) and the login
settings (``tirosh.argocd_login``, which use them).
"""

from __future__ import annotations

import shlex
from typing import Final

from tirosh.errors import OperatorError

__all__ = ["DEFAULT_USERNAME", "FLAGS", "LoginArgsError", "parse_login_args"]

FLAGS: Final = ("--plaintext", "--insecure", "--skip-test-tls", "--grpc-web", "--prompts-enabled")
DEFAULT_USERNAME: Final = "admin"


class LoginArgsError(OperatorError, ValueError):
    """A login setting is not understood; the message names the source and the word."""


def parse_login_args(text: str, source: str) -> dict[str, object]:
    """The meaning of the login words; LoginArgsError naming ``source`` and the unknown word."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise LoginArgsError(f"{source}: cannot split {text!r}: {exc}") from None
    result: dict[str, object] = {}
    index = 0
    while index < len(words):
        word = words[index]
        if word.startswith("--username"):
            if word.startswith("--username="):
                name = word.split("=", 1)[1]
            elif word == "--username" and index + 1 < len(words):
                index += 1
                name = words[index]
            else:
                raise LoginArgsError(f"{source}: --username needs a name")
            if not name or name.startswith("-"):
                raise LoginArgsError(f"{source}: --username needs a name, got {name!r}")
            result["username"] = name
        elif word in FLAGS:
            result[word.lstrip("-").replace("-", "_")] = True
        else:
            known = ", ".join((*FLAGS, "--username NAME"))
            raise LoginArgsError(f"{source}: unknown word {word!r} (known: {known})")
        index += 1
    return result
