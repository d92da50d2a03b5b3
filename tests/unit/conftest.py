"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fswatch_supervisor.store import EventStore

MakeStore = Callable[..., EventStore]
"""Opens a store in the test's directory with the given options; closed after the test."""


@pytest.fixture(name="make_store")
def _make_store(tmp_path: Path) -> Iterator[MakeStore]:
    opened: list[EventStore] = []

    def make(**kwargs: Any) -> EventStore:
        store = EventStore(tmp_path / "events", **kwargs)
        store.open()
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()
