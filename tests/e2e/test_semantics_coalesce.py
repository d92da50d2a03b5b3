"""Coalescing end to end: bursts of raw changes to one path, within ``coalesce_ms``, become one event."""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fswatch_supervisor.client import SupervisorClient
from tests.harness import SupervisorProc, events_of, start_supervisor

WINDOW_MS = 300  # generous: each scenario's steps must fall into one window on a loaded machine
SLACK_S = 0.150  # how late past its window an event may arrive on this noisy 2-core machine

Step = Callable[[Path], object]


@pytest.fixture(scope="module")
def shared_supervisor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SupervisorProc]:
    base = tmp_path_factory.mktemp("coalesce")
    (base / "state").mkdir()
    proc = start_supervisor(base / "state", log_dir=base)
    try:
        yield proc
    finally:
        proc.stop()


def append(path: Path, text: str = "x") -> None:
    with open(path, "a") as handle:
        handle.write(text)


def vim_save(d: Path) -> None:
    (d / "4913").touch()  # vim's probe: can it create files here?
    (d / "4913").unlink()
    os.rename(d / "x", d / "x~")
    (d / "x").write_text("new")
    (d / "x~").unlink()


def vscode_save(d: Path, temp: str) -> None:
    (d / temp).write_text("new")
    os.rename(d / temp, d / "x")


def jetbrains_save(d: Path) -> None:
    (d / "x___jb_tmp___").write_text("new")
    os.rename(d / "x", d / "x___jb_old___")
    os.rename(d / "x___jb_tmp___", d / "x")
    (d / "x___jb_old___").unlink()


def truncate_in_place(d: Path) -> None:
    with open(d / "x", "w") as handle:  # O_TRUNC, then a write: two raw updates
        handle.write("new")
        handle.flush()
        handle.write("er")


def swap(d: Path) -> None:
    os.rename(d / "x", d / "t")
    os.rename(d / "y", d / "x")
    os.rename(d / "t", d / "y")


def add(name: str) -> Step:
    return lambda d: append(d / name)


def rm(name: str) -> Step:
    return lambda d: (d / name).unlink()


def mv(source: str, target: str) -> Step:
    return lambda d: os.rename(d / source, d / target)


def mkdir(name: str) -> Step:
    return lambda d: (d / name).mkdir()


def rmdir(name: str) -> Step:
    return lambda d: (d / name).rmdir()


def vscode(temp: str) -> Step:
    return lambda d: vscode_save(d, temp)


# name: (files that exist before, the burst, expected events as (action, path, kind, from))
SCENARIOS: dict[str, tuple[tuple[str, ...], tuple[Step, ...], list[tuple[str, str, str | None, str | None]]]] = {
    "created+updated": ((), (add("f"), add("f")), [("created", "f", "file", None)]),
    "updated x5": (("x",), (add("x"),) * 5, [("updated", "x", "file", None)]),
    "created+deleted": ((), (add("f"), rm("f")), []),
    "deleted+created": (("x",), (rm("x"), add("x")), [("updated", "x", "file", None)]),
    "updated+deleted": (("x",), (add("x"), rm("x")), [("deleted", "x", "file", None)]),
    "moved": (("x",), (mv("x", "y"),), [("moved", "y", "file", "x")]),
    "moved twice": (("x",), (mv("x", "y"), mv("y", "z")), [("moved", "z", "file", "x")]),
    "moved and back": (("x",), (mv("x", "y"), mv("y", "x")), []),
    "moved then updated": (("x",), (mv("x", "y"), add("y")),
                           [("moved", "y", "file", "x"), ("updated", "y", "file", None)]),
    "moved onto existing": (("x", "y"), (mv("x", "y"),), [("moved", "y", "file", "x")]),
    "swap": (("x", "y"), (mv("x", "t"), mv("y", "x"), mv("t", "y")),
             [("moved", "y", "file", "x"), ("created", "x", "file", None)]),
    "dir moved with contents": (("d/f",), (mv("d", "e"),), [("moved", "e", "dir", "d")]),
    "mkdir+rmdir": ((), (mkdir("t"), rmdir("t")), []),
    "vim": (("x",), (vim_save,), [("updated", "x", "file", None)]),
    "vscode (hidden temp)": (("x",), (vscode(".x.tmp"),), [("updated", "x", "file", None)]),
    "vscode (visible temp)": (("x",), (vscode("x.tmp.91c2"),), [("updated", "x", "file", None)]),
    "jetbrains": (("x",), (jetbrains_save,), [("updated", "x", "file", None)]),
    "truncate in place": (("x",), (truncate_in_place,), [("updated", "x", "file", None)]),
    "temp renamed to a new name": ((), (vscode(".x.tmp"),), [("created", "x", "file", None)]),
}


def make_files(root: Path, rels: tuple[str, ...]) -> None:
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("old")


def relative(events: list[dict[str, object]], root: Path) -> list[tuple[object, ...]]:
    def rel(path: object) -> object:
        return None if path is None else os.path.relpath(str(path), root)
    return [(e["action"], rel(e["path"]), e["kind"], rel(e.get("from"))) for e in events]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_a_burst_within_the_window_becomes_its_net_effect(shared_supervisor: SupervisorProc, tmp_path: Path,
                                                          name: str) -> None:
    before, burst, expected = SCENARIOS[name]
    make_files(tmp_path, before)
    with shared_supervisor.client() as rpc:
        wid = rpc.call("create_watcher", path=str(tmp_path), coalesce_ms=WINDOW_MS)["id"]
        started = time.monotonic()
        for step in burst:
            step(tmp_path)
        took = time.monotonic() - started
        rpc.call("sync", id=wid)
        got = relative(events_of(rpc, wid), tmp_path)
        rpc.call("delete_watcher", id=wid)
    assert took < WINDOW_MS / 1000 / 2, f"the burst took {took:.3f} s: too slow to test one window"
    assert got == [tuple(e) for e in expected]


def test_window_zero_delivers_every_raw_change(shared_supervisor: SupervisorProc, tmp_path: Path) -> None:
    (tmp_path / "x").write_text("old")
    with shared_supervisor.client() as rpc:
        raw = rpc.call("create_watcher", path=str(tmp_path), coalesce_ms=0)["id"]
        merged = rpc.call("create_watcher", path=str(tmp_path), coalesce_ms=WINDOW_MS)["id"]
        (tmp_path / "f").touch()
        rpc.call("sync", id=raw)
        append(tmp_path / "f")
        rpc.call("sync", id=raw)
        (tmp_path / "f").unlink()
        vim_save(tmp_path)
        for wid in (raw, merged):
            rpc.call("sync", id=wid)
        got_raw = relative(events_of(rpc, raw), tmp_path)
        got_merged = relative(events_of(rpc, merged), tmp_path)
    assert got_raw[:3] == [("created", "f", "file", None), ("updated", "f", "file", None),
                           ("deleted", "f", "file", None)]
    vim_raw = got_raw[3:]  # the mirror may merge the write of x into its creation: check what matters
    must = [("created", "4913", "file", None), ("deleted", "4913", "file", None), ("moved", "x~", "file", "x"),
            ("created", "x", "file", None), ("deleted", "x~", "file", None)]
    assert [c for c in vim_raw if c in must] == must
    assert got_merged == [("updated", "x", "file", None)]  # f came and went inside one window


def long_poll(rpc: SupervisorClient, wid: str, after: str | None, wait: float = 5.0) -> list[dict[str, object]]:
    page = rpc.call("read_events", id=wid, after=after, wait=wait, timeout=wait + 5)
    return list(page["items"])


@pytest.mark.parametrize("window_ms", [50, 200])
def test_no_event_waits_much_longer_than_its_window(shared_supervisor: SupervisorProc, tmp_path: Path,
                                                    window_ms: int) -> None:
    delays: list[float] = []
    with shared_supervisor.client() as rpc:
        wid = rpc.call("create_watcher", path=str(tmp_path), coalesce_ms=window_ms)["id"]
        after = None
        for i in range(6):
            started = time.monotonic()
            (tmp_path / f"f{i}").touch()
            items = long_poll(rpc, wid, after)
            delays.append(time.monotonic() - started)
            assert [(e["action"], Path(str(e["path"])).name) for e in items] == [("created", f"f{i}")]
            after = str(items[-1]["id"])
    window = window_ms / 1000
    assert min(delays) >= window * 0.9, f"an event came out before its window closed: {delays}"
    assert max(delays) <= window + SLACK_S, f"delays {delays} exceed {window_ms} ms + {SLACK_S * 1000:.0f} ms"
    print(f"\nwindow {window_ms} ms: past the window median {(statistics.median(delays) - window) * 1000:.1f} ms, "
          f"max {(max(delays) - window) * 1000:.1f} ms")


def test_the_window_does_not_slide_under_constant_writes(shared_supervisor: SupervisorProc, tmp_path: Path) -> None:
    target = tmp_path / "log.txt"
    target.write_text("")
    window = 0.2
    stop = threading.Event()
    started = threading.Event()
    first_write = [0.0]

    def writer() -> None:
        first_write[0] = time.monotonic()
        started.set()
        while not stop.is_set():
            append(target)
            time.sleep(0.02)

    arrivals: list[float] = []
    with shared_supervisor.client() as rpc:
        wid = rpc.call("create_watcher", path=str(target), coalesce_ms=int(window * 1000))["id"]
        thread = threading.Thread(target=writer)
        thread.start()
        try:
            started.wait(5)
            after = None
            while time.monotonic() - first_write[0] < 1.2:
                items = long_poll(rpc, wid, after, wait=2.0)
                assert items, "no event while the file was written every 20 ms"
                arrivals.append(time.monotonic() - first_write[0])
                after = str(items[-1]["id"])
        finally:
            stop.set()
            thread.join()
    assert arrivals[0] <= window + SLACK_S, f"the first event came {arrivals[0]:.3f} s after the first write"
    assert len(arrivals) >= 4, f"only {len(arrivals)} events in 1.2 s of writes with a 200 ms window"
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    assert max(gaps) <= window + SLACK_S, f"gaps between events {gaps}"
