"""Shared fixtures: a real supervisor and a real front-end per test, on a fresh state directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fswatch_supervisor import native
from tests.harness import SupervisorProc, WorkerProc, start_supervisor, start_worker


def pytest_sessionstart(session: pytest.Session) -> None:
    # A compiled module shadows its source: after an edit, the tests would run the old code.
    stale = native.stale_modules()
    if stale:
        pytest.exit(f"compiled modules older than their sources: {', '.join(stale)}. Rebuild them "
                    "(`python setup.py build_ext --inplace`, or `pip install -e .`) or delete the *.so files "
                    "to run pure Python", returncode=2)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """An empty directory to watch and change."""
    path = tmp_path / "tree"
    path.mkdir()
    return path


@pytest.fixture
def supervisor(state_dir: Path, tmp_path: Path) -> Iterator[SupervisorProc]:
    proc = start_supervisor(state_dir, log_dir=tmp_path)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def api(supervisor: SupervisorProc, tmp_path: Path) -> Iterator[WorkerProc]:
    proc = start_worker(supervisor.state_dir, log_dir=tmp_path)
    try:
        yield proc
    finally:
        proc.stop()


def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> None:
    """On failure, attach the daemon logs of the test's tmp_path to the report."""
    if call.when == "call" and call.excinfo is not None:
        tmp = item.funcargs.get("tmp_path") if hasattr(item, "funcargs") else None
        if isinstance(tmp, Path):
            for log in sorted(tmp.glob("*.log")):
                item.add_report_section("call", log.name, log.read_text(errors="replace")[-6000:])
