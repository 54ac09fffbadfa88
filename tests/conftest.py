"""Fixtures shared by the behaviour tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Wh


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[Wh]:
    """A fresh warehouse in `tmp_path` (see helpers.Wh), closed after the test."""
    w = Wh(tmp_path / "wh")
    yield w
    w.con.close()
