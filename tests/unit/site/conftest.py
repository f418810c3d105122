"""The ``repo`` fixture: a copy of the valid site BASE under tmp_path/sites/lab."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.site.helpers import BASE


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    for name, text in BASE.items():
        path = tmp_path / "sites" / "lab" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path
