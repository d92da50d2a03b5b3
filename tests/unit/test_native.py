"""The compiled hot path: what setup.py compiles exists, and a compiled module older than its source
is named (it would run the old code)."""

from __future__ import annotations

import copy
import importlib.machinery
import os
import pickle
import runpy
import sys
from pathlib import Path

import pytest

from fswatch_supervisor import native
from fswatch_supervisor.backends.rawevent import RawEvent
from fswatch_supervisor.changes import Change
from fswatch_supervisor.store.records import NewEvent

REPO = Path(__file__).resolve().parents[2]


def test_every_hot_path_module_is_a_source_file_of_the_package() -> None:
    for module in native.HOT_PATH:
        assert (REPO / (module.replace(".", "/") + ".py")).is_file(), module


def test_setup_compiles_the_hot_path_unless_told_not_to(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("FSWATCH_PURE_PYTHON", "1")
    monkeypatch.setattr("setuptools.setup", lambda **kwargs: kwargs)
    setup_globals = runpy.run_path(str(REPO / "setup.py"), run_name="not_main")
    assert setup_globals["native_extensions"]() == []


def test_a_compiled_module_older_than_its_source_is_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "nativeprobe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    source = package / "hot.py"
    source.write_text("X = 1\n")
    extension = package / ("hot" + importlib.machinery.EXTENSION_SUFFIXES[0])
    extension.write_bytes(b"")  # never imported: find_spec only locates it
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "nativeprobe", raising=False)
    built = source.stat().st_mtime_ns
    os.utime(extension, ns=(built + 10**9, built + 10**9))
    assert native.compiled_modules(["nativeprobe.hot"]) == ["nativeprobe.hot"]
    assert native.stale_modules(["nativeprobe.hot"]) == []
    os.utime(source, ns=(built + 2 * 10**9, built + 2 * 10**9))  # edited after the build
    assert native.stale_modules(["nativeprobe.hot"]) == ["nativeprobe.hot"]


@pytest.mark.parametrize("value", [
    Change("moved", "/t/b", "file", 7, from_path="/t/a", existed_before=True, rescan=True, detail="d"),
    NewEvent("moved", "/t/b", "file", 7, ("w_a", "w_b"), from_path="/t/a", rescan=True, detail="d"),
    RawEvent("/t/a", "moved_from", True, 42),
])
def test_the_hot_paths_value_types_copy_and_pickle_whole(value: object) -> None:
    # Compiled, a class with its own __init__ is rebuilt by calling it: each field must come along.
    for twin in (copy.copy(value), copy.deepcopy(value), pickle.loads(pickle.dumps(value))):
        assert twin == value and twin is not value
