"""Imports go one way: fswatch_api → fswatch_worker → the supervisor's shared protocol modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = {  # the supervisor modules that form the protocol between processes
    "fswatch_supervisor.protocol", "fswatch_supervisor.client", "fswatch_supervisor.errors",
    "fswatch_supervisor.eventmodel", "fswatch_supervisor.statedir", "fswatch_supervisor.logs",
    "fswatch_supervisor.exitcodes", "fswatch_supervisor.memory", "fswatch_supervisor",
}


def imported_modules(package: str) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add((str(path.relative_to(ROOT)), node.module))
            elif isinstance(node, ast.Import):
                found.update((str(path.relative_to(ROOT)), alias.name) for alias in node.names)
    return found


@pytest.mark.parametrize("package", ["fswatch_api", "fswatch_worker"])
def test_front_end_uses_only_the_shared_protocol(package: str) -> None:
    bad = sorted((where, module) for where, module in imported_modules(package)
                 if module.startswith("fswatch_supervisor") and module not in SHARED)
    assert not bad, f"{package} reaches into supervisor internals: {bad}"


def test_supervisor_never_imports_the_front_end() -> None:
    bad = sorted((where, module) for where, module in imported_modules("fswatch_supervisor")
                 if module.startswith(("fswatch_api", "fswatch_worker")))
    assert not bad


def test_api_does_not_import_the_worker_runtime() -> None:
    assert not [m for _, m in imported_modules("fswatch_api") if m.startswith("fswatch_worker")]
