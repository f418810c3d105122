"""operations.util.connection: the dead-link bound an operator can set."""

from __future__ import annotations

import pytest

from operations.util import connection


def test_the_bound_defaults_to_thirty_seconds() -> None:
    assert connection.dead_after({}) == connection.DEFAULT_DEAD_AFTER == 30


def test_the_bound_comes_from_the_environment() -> None:
    assert connection.dead_after({"TIROSH_SSH_DEAD_AFTER": "12"}) == 12


@pytest.mark.parametrize("value", ["0", "4", "3601", "-5", "1e3", "٣٠", "30s", " 30"])
def test_a_bound_out_of_range_or_not_whole_ascii_seconds_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="TIROSH_SSH_DEAD_AFTER must be whole seconds"):
        connection.dead_after({"TIROSH_SSH_DEAD_AFTER": value})


def test_connectors_without_an_ssh_transport_are_left_alone() -> None:
    class Local:
        connector = object()

    assert connection.bound_dead_link(Local(), 10) is False
