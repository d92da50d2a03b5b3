"""Returning a burst's freed heap to the OS, and keeping optional imports out of a process."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from fswatch_supervisor import memory


class FakeCpu:
    """Stands in for ``time.process_time`` and ``malloc_trim``: the test says how much CPU is used."""

    def __init__(self) -> None:
        self.now = 0.0
        self.trims: list[float] = []

    def process_time(self) -> float:
        return self.now

    def malloc_trim(self, _pad: int) -> int:
        self.trims.append(self.now)
        return 1


@pytest.fixture(name="cpu")
def _cpu(monkeypatch: pytest.MonkeyPatch) -> FakeCpu:
    cpu = FakeCpu()
    monkeypatch.setattr(memory.time, "process_time", cpu.process_time)
    monkeypatch.setattr(memory, "_malloc_trim", cpu.malloc_trim)
    return cpu


async def _until(condition: object, timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def _run_trimmer(cpu: FakeCpu, scenario: object, burst_cpu_s: float = 0.25) -> None:
    task = asyncio.create_task(memory.trim_after_bursts(burst_cpu_s=burst_cpu_s, idle_poll_s=0.05, busy_poll_s=0.03))
    try:
        await scenario(cpu)  # type: ignore[operator]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_a_burst_is_trimmed_once_when_it_ends(cpu: FakeCpu) -> None:
    async def scenario(cpu: FakeCpu) -> None:
        for _ in range(100):  # busy for a while (one core's worth): no trim during the burst
            cpu.now += 0.003
            await asyncio.sleep(0.003)
        assert cpu.trims == []
        await _until(lambda: cpu.trims)
        await asyncio.sleep(0.2)  # idle afterwards: nothing more to give back
        assert cpu.trims == [pytest.approx(0.3)]

    asyncio.run(_run_trimmer(cpu, scenario))


def test_idle_and_a_trickle_of_small_work_never_trim(cpu: FakeCpu) -> None:
    async def scenario(cpu: FakeCpu) -> None:
        for _ in range(40):  # 2.5 % of a core: never "working", though it adds up to twice burst_cpu_s
            cpu.now += 0.0005
            await asyncio.sleep(0.02)
        assert cpu.trims == []

    asyncio.run(_run_trimmer(cpu, scenario, burst_cpu_s=0.01))


def test_release_free_heap_works_on_glibc() -> None:
    if not sys.platform.startswith("linux") or memory._malloc_trim is None:
        pytest.skip("no malloc_trim in this libc")
    assert memory.release_free_heap() is True


@pytest.fixture(name="optional_module")
def _optional_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = "fswatch_test_optional_dependency"
    (tmp_path / f"{name}.py").write_text("VALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return name


def test_hidden_import_fails_inside_the_block_only(optional_module: str) -> None:
    with memory.optional_imports_hidden(optional_module), pytest.raises(ImportError):
        importlib.import_module(optional_module)
    assert importlib.import_module(optional_module).VALUE == 42


def test_an_already_imported_module_is_not_hidden(optional_module: str) -> None:
    module = importlib.import_module(optional_module)
    with memory.optional_imports_hidden(optional_module):
        assert importlib.import_module(optional_module) is module
    assert sys.modules[optional_module] is module


def test_processes_do_not_load_what_they_never_use(tmp_path: Path) -> None:
    """rich (structlog's pretty tracebacks) and watchfiles (uvicorn's reloader) stay out of a
    front-end's and a supervisor's imports, even where they are installed (a stand-in package
    takes the place of one that is not, so an import of it would show)."""
    for name in ("rich", "watchfiles"):
        if importlib.util.find_spec(name) is None:
            (tmp_path / name).mkdir()
            (tmp_path / name / "__init__.py").write_text("")
    code = ("import sys; sys.path.append(sys.argv[1]); import fswatch_worker.runtime, fswatch_supervisor.cli; "
            "print(sorted({'rich', 'watchfiles'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_cycles_are_still_collected_after_collecting_rarely() -> None:
    # In a child: the collector's settings are process-wide.
    code = """
import gc, weakref
from fswatch_supervisor.memory import YOUNG_THRESHOLD, collect_cycles_rarely
startup = [object() for _ in range(10)]
collect_cycles_rarely()
assert gc.get_threshold()[0] == YOUNG_THRESHOLD and gc.get_freeze_count() > 0
class Node:
    pass
def cycle():
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)
refs = [cycle() for _ in range(3 * YOUNG_THRESHOLD)]  # no explicit collect: the thresholds must do it
print(sum(r() is None for r in refs))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert int(out.stdout) > memory.YOUNG_THRESHOLD  # most cycles were collected by the raised thresholds
