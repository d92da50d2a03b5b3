"""Directory moves whose subtree changes selection, and the mirror bugs found on the way."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from fswatch_supervisor.client import SupervisorClient
from tests.harness import SupervisorProc, events_of


def seen(rpc: SupervisorClient, wid: str, root: Path) -> list[tuple[str, ...]]:
    """(action, relative path[, relative from]) of every event of the watcher."""
    return [(e["action"], os.path.relpath(e["path"], root),
             *([os.path.relpath(e["from"], root)] if "from" in e else [])) for e in events_of(rpc, wid)]


def test_renaming_a_directory_out_of_an_anchored_exclusion_reports_its_contents(supervisor: SupervisorProc,
                                                                               tree: Path) -> None:
    (tree / "cache").mkdir()
    (tree / "cache" / "f").write_text("x")
    with supervisor.client() as rpc:
        wid = rpc.call("create_watcher", rules=[["include-path", str(tree)], ["exclude-glob", "cache/**"]])["id"]
        os.rename(tree / "cache", tree / "kept")
        rpc.call("sync", id=wid)
        first = seen(rpc, wid, tree)
        assert first == [("moved", "kept", "cache"), ("created", "kept/f")]
        os.rename(tree / "kept", tree / "cache")
        rpc.call("sync", id=wid)
        assert seen(rpc, wid, tree)[len(first):] == [("deleted", "kept/f"), ("moved", "cache", "kept")]


def test_a_directory_another_watcher_keeps_listed_reports_its_contents_when_it_appears(
        supervisor: SupervisorProc, tree: Path) -> None:
    hidden = tree / ".h"
    (hidden / ".keep").mkdir(parents=True)
    (hidden / ".keep" / "x").write_text("x")
    (hidden / "y").write_text("x")
    with supervisor.client() as rpc:
        plain = rpc.call("create_watcher", path=str(tree))["id"]
        # needs .h listed: a .keep anywhere, even below a hidden directory, is selected
        keeper = rpc.call("create_watcher", rules=[["include-path", str(tree)], ["exclude-hidden"],
                                                   ["include-glob", "**/.keep"]])["id"]
        os.rename(hidden, tree / "g")
        for wid in (plain, keeper):
            rpc.call("sync", id=wid)
        assert seen(rpc, plain, tree) == [("created", "g"), ("created", "g/y")]
        assert seen(rpc, keeper, tree) == [("deleted", ".h/.keep/x"), ("deleted", ".h/.keep"), ("created", "g"),
                                           ("created", "g/.keep"), ("created", "g/.keep/x"), ("created", "g/y")]


def test_pruned_directories_below_a_moved_directory_are_crawled_when_now_needed(supervisor: SupervisorProc,
                                                                                tree: Path) -> None:
    (tree / "cache" / "sub").mkdir(parents=True)
    with supervisor.client() as rpc:
        wid = rpc.call("create_watcher", rules=[["include-path", str(tree)], ["exclude-glob", "cache/**"]],
                       coalesce_ms=0)["id"]
        os.rename(tree / "cache", tree / "kept")
        rpc.call("sync", id=wid)
        (tree / "kept" / "sub" / "new").write_text("x")
        rpc.call("sync", id=wid)
        assert rpc.call("explain", id=wid, path=str(tree / "kept" / "sub"))["os_watched"] is True
        assert ("created", "kept/sub/new") in seen(rpc, wid, tree)


def test_a_symlink_renamed_before_the_mirror_saw_it_is_still_a_symlink(supervisor: SupervisorProc,
                                                                       tree: Path) -> None:
    with supervisor.client() as rpc:
        wid = rpc.call("create_watcher", path=str(tree), coalesce_ms=0)["id"]
        os.kill(supervisor.pid, signal.SIGSTOP)  # both events queue up before the mirror looks
        try:
            os.symlink("target", tree / "new-link")
            os.rename(tree / "new-link", tree / "link")
        finally:
            os.kill(supervisor.pid, signal.SIGCONT)
        rpc.call("sync", id=wid)
        kinds = {e["path"]: e["kind"] for e in events_of(rpc, wid)}
        snapshot = {i["path"]: i["kind"] for i in rpc.call("snapshot", id=wid)["items"]}
    assert snapshot == {str(tree / "link"): "symlink"}
    assert kinds[str(tree / "link")] == "symlink"


def test_renaming_a_directory_to_an_excluded_name_deletes_it_with_its_contents(supervisor: SupervisorProc,
                                                                              tree: Path) -> None:
    (tree / "src" / "deep").mkdir(parents=True)
    (tree / "src" / "deep" / "a.py").write_text("x")
    with supervisor.client() as rpc:
        wid = rpc.call("create_watcher", path=str(tree))["id"]
        watches = rpc.call("status")["os_watches"]
        os.rename(tree / "src", tree / ".src")
        rpc.call("sync", id=wid)
        assert seen(rpc, wid, tree) == [("deleted", "src/deep/a.py"), ("deleted", "src/deep"), ("deleted", "src")]
        assert rpc.call("status")["os_watches"] == watches - 2
