"""Exclusion reaches the OS, and kinds: what holds an inotify watch, and what every event says it is."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from tests.harness import SupervisorProc, count_inotify_watches, events_of, wait_until

MODULES = 2_000


def node_project(root: Path) -> int:
    """A project with ``src`` (3 dirs), ``.git`` (4 dirs) and a ``node_modules`` of exactly MODULES
    directories; returns how many directories a watcher excluding ``.git`` and node_modules needs."""
    for rel in ("src/app", "src/lib"):
        (root / rel).mkdir(parents=True)
        (root / rel / "main.js").write_text("x")
    for rel in ("objects/ab", "objects/cd", "refs"):
        (root / ".git" / rel).mkdir(parents=True)
    modules = root / "node_modules"
    modules.mkdir()
    for i in range(40):  # 1 + 40 packages * (1 + 48 subdirectories) = 1,961 ... topped up below
        package = modules / f"pkg{i}"
        package.mkdir()
        for j in range(48):
            (package / f"d{j}").mkdir()
    for k in range(MODULES - 1 - 40 * 49):
        (modules / f"extra{k}").mkdir()
    assert sum(1 for _ in os.walk(modules)) == MODULES
    return 1 + 3  # the root, src, src/app, src/lib


def test_excluded_directories_get_no_os_watch_until_a_watcher_needs_them(supervisor: SupervisorProc,
                                                                          tree: Path) -> None:
    needed = node_project(tree)
    rules = [["include-path", str(tree)], ["exclude-hidden"], ["exclude-glob", "**/node_modules"]]
    with supervisor.client() as rpc:
        lean = rpc.call("create_watcher", rules=rules)["id"]
        assert count_inotify_watches(supervisor.pid) == needed
        assert rpc.call("status")["os_watches"] == needed
        # Never crawled: a pruned directory is not in the mirror's model, so not in the snapshot.
        listed = {item["path"] for item in rpc.call("snapshot", id=lean, limit=10_000)["items"]}
        assert str(tree / "node_modules") not in listed and str(tree / ".git") not in listed

        started = time.monotonic()
        full = rpc.call("create_watcher", path=str(tree))["id"]  # default rules: node_modules, not .git
        crawl_s = time.monotonic() - started
        assert count_inotify_watches(supervisor.pid) == needed + MODULES
        assert rpc.call("explain", id=lean, path=str(tree / "node_modules/pkg3/d7"))["os_watched"] is True
        assert rpc.call("explain", id=full, path=str(tree / ".git/refs"))["os_watched"] is False

        rpc.call("delete_watcher", id=full)
        wait_until(lambda: count_inotify_watches(supervisor.pid) == needed, 10, 0.05, "node_modules released")
        assert rpc.call("explain", id=lean, path=str(tree / "node_modules"))["os_watched"] is False

        # The lean watcher still works, and sees nothing of the released subtree.
        (tree / "node_modules" / "pkg1" / "new.js").write_text("x")
        (tree / "src" / "app" / "new.js").write_text("x")
        rpc.call("sync", id=lean)
        paths = {e["path"] for e in events_of(rpc, lean)}
        assert paths == {str(tree / "src/app/new.js")}
    print(f"\nwatches: lean={needed}, with node_modules={needed + MODULES}; crawl of {MODULES} dirs "
          f"took {crawl_s * 1000:.0f} ms")


def test_a_new_excluded_directory_is_not_watched(supervisor: SupervisorProc, tree: Path) -> None:
    with supervisor.client() as rpc:
        wid = rpc.call("create_watcher", path=str(tree), coalesce_ms=0)["id"]
        before = count_inotify_watches(supervisor.pid)
        (tree / ".venv" / "lib" / "site").mkdir(parents=True)
        (tree / ".venv" / "lib" / "site" / "x.py").write_text("x")
        (tree / "visible" / "deep").mkdir(parents=True)
        rpc.call("sync", id=wid)
        assert count_inotify_watches(supervisor.pid) == before + 2
        assert {e["path"] for e in events_of(rpc, wid)} == {str(tree / "visible"), str(tree / "visible/deep")}
        # renaming the hidden directory to a visible name makes it needed: watched, and its content reported
        os.rename(tree / ".venv", tree / "venv")
        rpc.call("sync", id=wid)
        assert count_inotify_watches(supervisor.pid) == before + 2 + 3
        created = {e["path"] for e in events_of(rpc, wid) if e["action"] == "created"}
        assert {str(tree / p) for p in ("venv", "venv/lib", "venv/lib/site", "venv/lib/site/x.py")} <= created


def test_every_event_carries_its_kind_and_symlinks_are_never_followed(supervisor: SupervisorProc,
                                                                     tree: Path) -> None:
    (tree / "d").mkdir()
    with supervisor.client() as rpc:
        wid = rpc.call("create_watcher", path=str(tree), coalesce_ms=0)["id"]
        watches = count_inotify_watches(supervisor.pid)
        (tree / "d" / "f").write_text("x")
        (tree / "d" / "sub").mkdir()
        os.symlink("..", tree / "d" / "loop")  # a loop: d/loop/d/loop/...
        os.symlink(str(tree), tree / "d" / "up")
        os.symlink("missing", tree / "d" / "dangling")
        os.symlink("f", tree / "d" / "to-file")
        rpc.call("sync", id=wid)
        (tree / "d" / "f").write_text("y")
        os.utime(tree / "d" / "loop", follow_symlinks=False)
        rpc.call("sync", id=wid)
        for name in ("loop", "dangling", "to-file", "f", "sub"):
            path = tree / "d" / name
            path.rmdir() if name == "sub" else path.unlink()
        rpc.call("sync", id=wid)
        seen = [(e["action"], os.path.relpath(e["path"], tree), e["kind"]) for e in events_of(rpc, wid)]
        # one new watch (d/sub, removed again), none through the links
        assert count_inotify_watches(supervisor.pid) == watches
        snapshot = {i["path"]: i["kind"] for i in rpc.call("snapshot", id=wid)["items"]}
    assert snapshot == {str(tree / "d"): "dir", str(tree / "d/up"): "symlink"}
    assert all(e[2] in ("file", "dir", "symlink") for e in seen), seen
    assert not any(p.startswith(("d/loop/", "d/up/")) for _, p, _ in seen)
    for name in ("loop", "up", "dangling", "to-file"):
        assert ("created", f"d/{name}", "symlink") in seen
    assert ("updated", "d/f", "file") in seen
    assert ("updated", "d/loop", "symlink") in seen
    assert {("deleted", "d/loop", "symlink"), ("deleted", "d/f", "file"), ("deleted", "d/sub", "dir")} <= set(seen)


def test_directory_moved_in_reports_contents_and_moved_out_releases_watches(supervisor: SupervisorProc,
                                                                           tree: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    for i in range(50):
        (outside / "pkg" / f"m{i}").mkdir(parents=True)
        (outside / "pkg" / f"m{i}" / "f.txt").write_text("x")
    (outside / "pkg" / ".hidden").mkdir()
    with supervisor.client() as rpc:
        wid = rpc.call("create_watcher", path=str(tree), coalesce_ms=0)["id"]
        base = count_inotify_watches(supervisor.pid)
        os.rename(outside / "pkg", tree / "pkg")
        rpc.call("sync", id=wid)
        moved_in = events_of(rpc, wid)
        assert count_inotify_watches(supervisor.pid) == base + 51  # pkg and m0..m49, not .hidden
        shutil.move(tree / "pkg", outside / "gone")
        rpc.call("sync", id=wid)
        moved_out = events_of(rpc, wid, after=moved_in[-1]["id"])
        assert count_inotify_watches(supervisor.pid) == base
    pkg = str(tree / "pkg")
    expected = {(pkg, "dir")} | {(f"{pkg}/m{i}", "dir") for i in range(50)} | {
        (f"{pkg}/m{i}/f.txt", "file") for i in range(50)}
    assert [e["action"] for e in moved_in] == ["created"] * len(expected)
    assert {(e["path"], e["kind"]) for e in moved_in} == expected
    assert moved_in[0]["path"] == pkg  # the directory before its contents
    assert {(e["action"], e["path"], e["kind"]) for e in moved_out} == {("deleted", p, k) for p, k in expected}
    order = [e["path"] for e in moved_out]
    assert order[-1] == pkg  # children first: a consumer replaying removes leaves before their dir


def test_a_new_watcher_inside_a_watched_tree_takes_no_news_from_the_others(supervisor: SupervisorProc,
                                                                           tmp_path: Path) -> None:
    """Entries made just before a watcher is created inside a followed tree, with their events not
    applied yet, still reach the watchers that follow the tree; the new watcher starts from them."""
    tree, outside = tmp_path / "t", tmp_path / "outside"
    (tree / "b").mkdir(parents=True)
    (tree / "z").write_text("z")
    outside.mkdir()
    with supervisor.client() as rpc:
        w0 = rpc.call("create_watcher", rules=[["include-path", str(tree)], ["exclude-hidden"]], coalesce_ms=0)["id"]
        rpc.call("sync", id=w0)
        # A move out of the tree: the pairer holds that read for its grace period, and with it
        # the events below, so the new watchers are created before those are applied.
        os.rename(tree / "z", outside / "z")
        (tree / "d").mkdir()
        (tree / "d" / "x").write_text("new")
        (tree / "b" / "f").write_text("new")
        w_dir = rpc.call("create_watcher", rules=[["include-path", str(tree / "d")]], coalesce_ms=0)["id"]
        w_file = rpc.call("create_watcher", path=str(tree / "b" / "f"), coalesce_ms=0)["id"]
        rpc.call("sync", id=w0)
        seen = [(e["action"], os.path.relpath(e["path"], tree)) for e in events_of(rpc, w0)]
        assert sorted(seen) == [("created", "b/f"), ("created", "d"), ("created", "d/x"), ("deleted", "z")]
        for new in (w_dir, w_file):
            rpc.call("sync", id=new)
            assert events_of(rpc, new) == []
