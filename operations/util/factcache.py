"""Read each fact once per run while nothing on the host has changed.

pyinfra 3.10 keeps no fact cache, and an operation's generator runs once while the deploy is
planned (for ``--dry``, for the confirmation prompt, or for ``op.will_change`` in deploy code)
and again while it executes: a no-op converge read its facts twice over SSH. Here the values read
are kept per host and given back until the host is sent its first command by an operation; from
then on every read for that host is live again, so an operation that runs after a change still
sees the host as it is (a kubeconfig pulled after k3s restarted, say).

Opt-in per run: ``deploy.py`` calls :func:`enable` with its state. Fixture tests and
``pyinfra ... fact`` never see the cache.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from pyinfra.api import Host, State
from pyinfra.api.command import PyinfraCommand
from pyinfra.api.state import BaseStateCallback

# The operation's global arguments that change what a fact reads (who runs it, how).
_SCOPING_ARGUMENTS = ("_sudo", "_sudo_user", "_su_user", "_use_sudo_login", "_shell_executable")
_original_get_fact = Host.get_fact


class _Cache:
    def __init__(self) -> None:
        self.values: dict[str, dict[str, Any]] = {}
        self.live: set[str] = set()  # hosts on which something changed: no caching any more


def _key(host: Host, fact: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    scope: dict[str, Any] = dict(host.current_op_global_arguments or {})
    scoped = {name: scope.get(name) for name in _SCOPING_ARGUMENTS}
    text = repr((getattr(fact, "name", fact), args, sorted(kwargs.items()), sorted(scoped.items())))
    # A digest keeps a large argument (a manifest on stdin) out of the key's memory.
    return hashlib.sha256(text.encode()).hexdigest()


def _get_fact(self: Host, fact: Any, *args: Any, **kwargs: Any) -> Any:
    cache: _Cache | None = getattr(self.state, "_tirosh_fact_cache", None)
    if cache is None or self.name in cache.live:
        return _original_get_fact(self, fact, *args, **kwargs)
    key = _key(self, fact, args, kwargs)
    values = cache.values.setdefault(self.name, {})
    if key not in values:
        values[key] = _original_get_fact(self, fact, *args, **kwargs)
    return values[key]


class _Invalidate(BaseStateCallback):
    """Reads go live for a host as soon as an operation sends it its first command."""

    @staticmethod
    def operation_host_start(state: State, host: Host, op_hash: Any) -> None:
        if op_hash not in state.ops[host]:
            return  # pyinfra skips it: not this host's operation
        data = state.ops[host][op_hash]
        commands = data.command_generator

        def watched() -> Iterator[PyinfraCommand]:
            for command in commands():
                # Before the command runs: whatever is read after it must be read from the host.
                cache: _Cache = state._tirosh_fact_cache  # type: ignore[attr-defined]
                cache.live.add(host.name)
                cache.values.pop(host.name, None)
                yield command

        data.command_generator = watched


def enable(state: State) -> None:
    """Turn the cache on for this run (idempotent: each deploy file may call it)."""
    if getattr(state, "_tirosh_fact_cache", None) is not None:
        return
    cache = _Cache()
    state._tirosh_fact_cache = cache  # type: ignore[attr-defined]
    state.add_callback_handler(_Invalidate())
    Host.get_fact = _get_fact  # type: ignore[method-assign,assignment]
