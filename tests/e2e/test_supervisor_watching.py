"""Shared OS watches, the pipeline, crash recovery and trouble-as-events, with a real supervisor."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

from fswatch_supervisor.eventmodel import parse_id
from tests.harness import SupervisorProc, count_inotify_watches, events_of, start_supervisor, wait_until


def make_tree(root: Path, fanout: tuple[int, ...]) -> list[Path]:
    """Directories ``d0/d1/...`` with the given fan-out per level; returns every directory made."""
    made = [root]
    level = [root]
    for width in fanout:
        level = [parent / f"d{i}" for parent in level for i in range(width)]
        for directory in level:
            directory.mkdir()
        made.extend(level)
    return made


def test_overlapping_watchers_share_one_watch_per_directory(supervisor: SupervisorProc, tree: Path) -> None:
    dirs = make_tree(tree, (5, 6, 9))  # 1 + 5 + 30 + 270 = 306 directories
    assert len(dirs) >= 300
    with supervisor.client() as rpc:
        subtrees = [tree, *sorted(d for d in dirs if d.parent == tree), *sorted(dirs[6:40])]
        ids = [rpc.call("create_watcher", path=str(subtrees[i % len(subtrees)]))["id"] for i in range(40)]
        held = count_inotify_watches(supervisor.pid)
        assert held == len(dirs), f"{held} inotify watches for {len(dirs)} directories"
        assert rpc.call("status")["os_watches"] == len(dirs)
        # Deleting every watcher but the one on a single leaf releases all other watches.
        leaf = rpc.call("create_watcher", path=str(dirs[-1]))["id"]
        rpc.call("delete_watchers", ids=ids)
        wait_until(lambda: count_inotify_watches(supervisor.pid) == 1, 10, 0.05, "watches to be released")
        rpc.call("delete_watcher", id=leaf)
        wait_until(lambda: count_inotify_watches(supervisor.pid) == 0, 10, 0.05, "the last watch to go")


def test_created_updated_deleted_moved_with_kinds(supervisor: SupervisorProc, tree: Path) -> None:
    with supervisor.client() as rpc:
        wid = rpc.call("create_watcher", path=str(tree), coalesce_ms=0)["id"]
        (tree / "sub").mkdir()
        (tree / "sub" / "f.txt").write_text("1")
        rpc.call("sync", id=wid)
        with open(tree / "sub" / "f.txt", "a") as handle:
            handle.write("2")
        rpc.call("sync", id=wid)
        os.rename(tree / "sub" / "f.txt", tree / "sub" / "g.txt")
        os.symlink("g.txt", tree / "sub" / "link")
        rpc.call("sync", id=wid)
        (tree / "sub" / "g.txt").unlink()
        (tree / ".hidden").write_text("ignored by default")
        rpc.call("sync", id=wid)
        seen = [(e["action"], e["path"], e["kind"], e.get("from")) for e in events_of(rpc, wid)]
    sub = str(tree / "sub")
    assert ("created", sub, "dir", None) in seen
    assert ("created", f"{sub}/f.txt", "file", None) in seen
    assert ("updated", f"{sub}/f.txt", "file", None) in seen
    assert ("moved", f"{sub}/g.txt", "file", f"{sub}/f.txt") in seen
    assert ("created", f"{sub}/link", "symlink", None) in seen
    assert ("deleted", f"{sub}/g.txt", "file", None) in seen
    assert not any(path.endswith(".hidden") or ".fswatch-cookie" in path for _, path, _, _ in seen)


def test_new_directory_filled_at_once_reports_every_file(supervisor: SupervisorProc, tree: Path) -> None:
    with supervisor.client() as rpc:
        wid = rpc.call("create_watcher", path=str(tree), coalesce_ms=0)["id"]
        expected = set()
        for n in range(20):
            deep = tree / f"a{n}" / "b" / "c"
            deep.mkdir(parents=True)
            for i in range(5):
                (deep / f"f{i}").write_text("x")
                expected.add(str(deep / f"f{i}"))
        rpc.call("sync", id=wid)
        created = {e["path"] for e in events_of(rpc, wid) if e["action"] == "created"}
    assert expected <= created, f"missing {sorted(expected - created)[:5]}"


def test_kill9_during_a_burst_loses_no_acknowledged_event(state_dir: Path, tree: Path, tmp_path: Path) -> None:
    proc = start_supervisor(state_dir, log_dir=tmp_path)
    acknowledged: list[dict[str, object]] = []
    try:
        with proc.client() as rpc:
            wid = rpc.call("create_watcher", path=str(tree), coalesce_ms=0)["id"]
            stop = threading.Event()

            def burst() -> None:
                n = 0
                while not stop.is_set() and n < 20_000:
                    (tree / f"f{n}").write_text("x")
                    n += 1
            writer = threading.Thread(target=burst)
            writer.start()
            try:
                wait_until(lambda: len(events_of(rpc, wid)) > 200, 20, 0.05, "events to flow")
                acknowledged = events_of(rpc, wid)
            finally:
                proc.kill9()
                stop.set()
                writer.join()
    finally:
        proc.stop()
    restarted = start_supervisor(state_dir, log_dir=tmp_path)
    try:
        with restarted.client() as rpc:
            after_restart = events_of(rpc, wid)
            by_id = {e["id"]: e for e in after_restart}
            for event in acknowledged:
                assert by_id.get(event["id"]) == event  # type: ignore[arg-type]
            ids = [parse_id(e["id"]) for e in after_restart]
            assert ids == sorted(ids) and len(ids) == len(set(ids))
            (tree / "after-restart").write_text("x")
            rpc.call("sync", id=wid)
            newest = events_of(rpc, wid, after=after_restart[-1]["id"])
            assert newest and parse_id(newest[-1]["id"]) > ids[-1]
    finally:
        restarted.stop()


def test_changes_made_while_down_arrive_marked_rescan(state_dir: Path, tree: Path, tmp_path: Path) -> None:
    (tree / "keep.txt").write_text("1")
    (tree / "gone.txt").write_text("1")
    proc = start_supervisor(state_dir, log_dir=tmp_path)
    with proc.client() as rpc:
        wid = rpc.call("create_watcher", path=str(tree))["id"]
    assert proc.stop() == 0
    (tree / "new.txt").write_text("1")
    (tree / "gone.txt").unlink()
    with open(tree / "keep.txt", "a") as handle:
        handle.write("longer now")
    proc = start_supervisor(state_dir, log_dir=tmp_path)
    try:
        with proc.client() as rpc:
            rpc.call("sync", id=wid)
            seen = {(e["action"], Path(e["path"]).name) for e in events_of(rpc, wid) if e.get("rescan")}
        assert {("created", "new.txt"), ("deleted", "gone.txt"), ("updated", "keep.txt")} <= seen
    finally:
        proc.stop()


def test_torn_segment_tail_is_cut_on_restart(state_dir: Path, tree: Path, tmp_path: Path) -> None:
    proc = start_supervisor(state_dir, log_dir=tmp_path)
    with proc.client() as rpc:
        wid = rpc.call("create_watcher", path=str(tree), coalesce_ms=0)["id"]
        for i in range(10):
            (tree / f"f{i}").write_text("x")
        rpc.call("sync", id=wid)
        before = events_of(rpc, wid)
    proc.kill9()
    segment = max((state_dir / "events").glob("seg-*"))
    with open(segment, "ab") as handle:
        handle.write(b"\x40\x00\x00\x00\xde\xad\xbe\xefhalf a rec")
    proc = start_supervisor(state_dir, log_dir=tmp_path)
    try:
        with proc.client() as rpc:
            assert events_of(rpc, wid)[: len(before)] == before
    finally:
        proc.stop()


def test_overflow_is_an_event_followed_by_a_complete_rescan(supervisor: SupervisorProc, tree: Path) -> None:
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    with supervisor.client() as rpc:
        wid = rpc.call("create_watcher", path=str(tree), coalesce_ms=0)["id"]
        rpc.call("sync", id=wid)
        os.kill(supervisor.pid, signal.SIGSTOP)
        try:
            count = limit + 2000
            subprocess.run([sys.executable, "-c",
                            "import sys,os\nd=sys.argv[1]\nfor i in range(int(sys.argv[2])):\n"
                            "    open(os.path.join(d, f'o{i}'), 'w').close()", str(tree), str(count)],
                           check=True)
        finally:
            os.kill(supervisor.pid, signal.SIGCONT)
        rpc.call("sync", id=wid, timeout_s=120, timeout=130)
        events = events_of(rpc, wid)
    assert any(e["action"] == "overflow" and e["path"] == str(tree) for e in events)
    created = {e["path"] for e in events if e["action"] == "created"}
    missing = [i for i in range(count) if str(tree / f"o{i}") not in created]
    assert not missing, f"{len(missing)} of {count} files never reported"


def test_root_deleted_is_an_event(supervisor: SupervisorProc, tree: Path) -> None:
    root = tree / "root"
    root.mkdir()
    with supervisor.client() as rpc:
        wid = rpc.call("create_watcher", path=str(root))["id"]
        shutil.rmtree(root)
        wait_until(lambda: any(e["action"] == "root-deleted" for e in events_of(rpc, wid)), 10, 0.05,
                   "root-deleted")
        assert rpc.call("ping")["ready"] is True


def test_after_root_deleted_a_watcher_hears_nothing_more_there_whoever_else_watches(supervisor: SupervisorProc,
                                                                                     tree: Path) -> None:
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "old").write_text("x")
    with supervisor.client() as rpc:
        outer = rpc.call("create_watcher", path=str(tree), coalesce_ms=0)["id"]
        inner = rpc.call("create_watcher", path=str(tree / "a" / "b"), coalesce_ms=0)["id"]
        shutil.rmtree(tree / "a" / "b")
        (tree / "a" / "b").mkdir()
        (tree / "a" / "b" / "f").write_text("y")
        wait_until(lambda: any(e["path"] == str(tree / "a" / "b" / "f") for e in events_of(rpc, outer)), 10, 0.05,
                   "the outer watcher sees the directory made again")
        rpc.call("sync", id=inner)
        assert [(e["action"], os.path.relpath(e["path"], tree)) for e in events_of(rpc, inner)] == [
            ("deleted", "a/b/old"), ("root-deleted", "a/b")]
        assert rpc.call("snapshot", id=inner)["items"] == []
        assert "root-deleted" not in {e["action"] for e in events_of(rpc, outer)}  # not its root


def test_the_portable_watchdog_backend_serves_the_same_events(state_dir: Path, tree: Path, tmp_path: Path) -> None:
    proc = start_supervisor(state_dir, "--backend", "watchdog", log_dir=tmp_path)
    try:
        with proc.client() as rpc:
            wid = rpc.call("create_watcher", path=str(tree), coalesce_ms=0)["id"]
            (tree / "sub").mkdir()
            (tree / "sub" / "a.txt").write_text("1")
            rpc.call("sync", id=wid)
            (tree / "sub" / "a.txt").unlink()
            rpc.call("sync", id=wid)
            seen = {(e["action"], e["path"]) for e in events_of(rpc, wid)}
        assert ("created", str(tree / "sub")) in seen
        assert ("created", str(tree / "sub" / "a.txt")) in seen
        assert ("deleted", str(tree / "sub" / "a.txt")) in seen
    finally:
        proc.stop()
