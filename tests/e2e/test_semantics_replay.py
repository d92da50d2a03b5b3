"""The consumer's guarantee, property-tested on a real tree: snapshot + replayed events = the live state.

Each example gets a fresh directory with some files, a watcher with random-ish rules and window,
takes a snapshot, runs a random sequence of file operations, syncs, and replays the events after the
snapshot's ``after`` onto the snapshot. The result must be exactly the selected entries on disk, with
their kinds. The expected selection is computed here independently of ``rules.py``.
"""

from __future__ import annotations

import itertools
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fswatch_supervisor.client import SupervisorClient
from tests.harness import SupervisorProc, events_of, start_supervisor

FILE_NAMES = ("f", "g", ".f", "k.tmp", "n.log", ".keep")
DIR_NAMES = ("a", "b", "build", ".h", "cache", "d.tmp", ".keep")

Selector = Callable[[list[str]], bool]

# Each extra rule, with an independent statement of what it excludes or includes (on the components
# of the path relative to the root). The default rules come first: include-path ROOT, exclude-hidden.
EXTRA_RULES: dict[str, tuple[list[list[str]], Selector, Selector]] = {
    "no tmp": ([["exclude-glob", "**/*.tmp"]], lambda c: any(x.endswith(".tmp") for x in c), lambda c: False),
    "no build": ([["exclude-glob", "**/build"]], lambda c: "build" in c, lambda c: False),
    "no top-level logs": ([["exclude-glob", "*.log"]], lambda c: c[0].endswith(".log"), lambda c: False),
    "not inside cache": ([["exclude-glob", "cache/**"]], lambda c: len(c) > 1 and c[0] == "cache", lambda c: False),
    "keep .keep": ([["exclude-glob", "**/*.tmp"], ["include-glob", "**/.keep"]],
                   lambda c: any(x.endswith(".tmp") for x in c), lambda c: ".keep" in c),
}


def selected(rel: str, extra: str) -> bool:
    comps = rel.split("/")
    _, excludes, includes = EXTRA_RULES[extra]
    if includes(comps):  # the include comes last: it wins where it matches
        return True
    return not any(x.startswith(".") for x in comps) and not excludes(comps)


def live_state(root: Path, extra: str) -> dict[str, str]:
    """path -> kind of every selected entry below ``root`` (symlinks not followed)."""
    found: dict[str, str] = {}
    stack = [root]
    while stack:
        directory = stack.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                kind = ("symlink" if entry.is_symlink() else "dir" if entry.is_dir(follow_symlinks=False)
                        else "file")
                if kind == "dir":
                    stack.append(Path(entry.path))
                if selected(os.path.relpath(entry.path, root), extra):
                    found[entry.path] = kind
    return found


def replay(state: dict[str, str], events: list[dict[str, Any]]) -> dict[str, str]:
    """A consumer's view: a deleted directory takes its subtree along, a moved one carries it."""
    state = dict(state)

    def drop(path: str) -> dict[str, str]:
        below = {p: k for p, k in state.items() if p == path or p.startswith(path + "/")}
        for p in below:
            del state[p]
        return below

    for event in events:
        action, path = event["action"], event["path"]
        if action in ("created", "updated"):
            state[path] = event["kind"]
        elif action == "deleted":
            drop(path)
        elif action == "moved":
            carried = drop(event["from"])
            drop(path)
            state.update({path + p[len(event["from"]):]: k for p, k in carried.items()})
            state[path] = event["kind"]
        else:
            raise AssertionError(f"unexpected event {event}")
    return state


class Operations:
    """Applies abstract operations (indices into the current tree) to a real directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _entries(self) -> tuple[list[Path], list[Path]]:
        dirs: list[Path] = [self.root]
        others: list[Path] = []
        for directory, subdirs, files in os.walk(self.root):
            dirs.extend(Path(directory, d) for d in subdirs if not Path(directory, d).is_symlink())
            others.extend(Path(directory, f) for f in files)
            others.extend(Path(directory, d) for d in subdirs if Path(directory, d).is_symlink())
        return sorted(dirs), sorted(others)

    def apply(self, op: str, i: int, j: int, k: int) -> None:
        dirs, files = self._entries()
        parent = dirs[i % len(dirs)]
        try:
            if op == "create":
                (parent / FILE_NAMES[j % len(FILE_NAMES)]).write_text("new")
            elif op == "update" and files:
                with open(files[j % len(files)], "a") as handle:
                    handle.write("more")
            elif op == "delete" and files:
                files[j % len(files)].unlink()
            elif op == "mkdir":
                (parent / DIR_NAMES[j % len(DIR_NAMES)]).mkdir()
            elif op == "rmtree" and len(dirs) > 1:
                shutil.rmtree(dirs[1 + j % (len(dirs) - 1)])
            elif op == "symlink":
                os.symlink(FILE_NAMES[k % len(FILE_NAMES)], parent / f"l{j % 3}")
            elif op == "rename-dir" and len(dirs) > 1:
                source = dirs[1 + j % (len(dirs) - 1)]
                os.rename(source, source.with_name(DIR_NAMES[k % len(DIR_NAMES)]))
            elif op in ("move-file", "move-dir"):
                pool = files if op == "move-file" else dirs[1:]
                if pool:
                    source = pool[j % len(pool)]
                    names = FILE_NAMES + DIR_NAMES
                    target = parent / names[k % len(names)]
                    if target != source and not str(target).startswith(str(source) + "/"):
                        os.rename(source, target)
            elif op == "pause":
                time.sleep(0.03)  # let some windows close in the middle of the sequence
        except OSError:
            pass  # e.g. a name taken by the other kind; the sequence goes on


OPS = ["create", "create", "update", "delete", "mkdir", "rmtree", "move-file", "move-file", "move-dir", "rename-dir",
       "symlink", "pause"]
# FSWATCH_REPLAY_MIX=renames triples the renames and symlinks, where the mirror's races live (a soak
# run's choice; the default mix is what CI runs).
RENAME_HEAVY = OPS + ["move-file", "move-dir", "move-dir", "rename-dir", "rename-dir", "symlink"] * 2
NUMBER = st.integers(0, 50)
OP = st.tuples(st.sampled_from(RENAME_HEAVY if os.environ.get("FSWATCH_REPLAY_MIX") == "renames" else OPS),
               NUMBER, NUMBER, NUMBER)


@pytest.fixture(scope="module")
def replay_supervisor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SupervisorProc, Path]]:
    base = tmp_path_factory.mktemp("replay")
    (base / "state").mkdir()
    proc = start_supervisor(base / "state", log_dir=base)
    try:
        yield proc, base
    finally:
        proc.stop()


def snapshot(rpc: SupervisorClient, wid: str) -> tuple[dict[str, str], str]:
    page = rpc.call("snapshot", id=wid, limit=7)  # small pages: the cursor is part of the contract
    after = page["after"]
    items = list(page["items"])
    while page["next"]:
        page = rpc.call("snapshot", id=wid, limit=7, cursor=page["next"])
        assert page["after"] == after
        items.extend(page["items"])
    return {i["path"]: i["kind"] for i in items}, after


COUNTER = itertools.count()


@settings(max_examples=int(os.environ.get("FSWATCH_REPLAY_EXAMPLES", "20")), deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
# Regressions the random search rarely reaches: a hidden directory that the neighbour keeps listed
# renamed to a visible name; "cache" (contents excluded) renamed, with a 50 ms window; a directory
# renamed while the mirror lists it (mkdir a; a/f a/g; rm f; mv a f; mv f/f g: its entries were
# dropped ~1 % of the time, test_mirror_rename_races); a file moved into a directory renamed in the
# same window (mkdir a; >f; mv a g; mv f g/f: created g/f came out before moved g from a); a directory
# moved twice in one window through a hidden name (mkdir a; >a/f; mv a .h; mv .h cache: deleted a/f was
# missing) and two directories renamed to one name in one batch (>f; mkdir build d.tmp; mv f d.tmp/f;
# mv build b; mv d.tmp b: created b/f was missing), a directory whose name a file took before its event
# was read (>k.tmp; mkdir b; mv b .h; mv .h build; mv k.tmp b: build came out as a file), all in
# test_mirror_rename_races; a file moved out of a directory moved twice in one window, its old name
# taken by the file (mkdir a; >a/f; pause; mv a f; mv f g; mv g/f f: moved f from g/f came out before
# moved g from a, test_coalesce); a directory moved on as its previous move's window closed (mkdir a;
# >a/.f; mv a .keep; ...; mv .keep g: deleted .keep/.f was missing; or closed by a deletion in the same
# read: mv d.tmp cache; rm -r cache/b; mv cache b, deleted d.tmp/b was missing, test_mirror_rename_races); a
# directory moved away through a name nobody lists and deleted, a new one made in its place (mv a .h;
# mv .h b; rm -r b; mkdir .h; mv .h a: "updated a" kept a/f, test_coalesce); a name renamed onto twice,
# the second time from an unwatched directory (ln -s .f .keep; mkdir .h; >.h/.f; mv .h a; mv .keep cache;
# mv a/.f cache: the kernel dropped the second moved_to, cache stayed a symlink, test_mirror_rename_races); a
# directory moved away and back, then deleted, in one window (>f; mkdir cache; mv f cache/a; mv cache g;
# mv g cache; rm -r cache: created cache/a came out after deleted cache, test_mirror_rename_races).
@example(setup=[("mkdir", 0, 3, 0), ("create", 1, 0, 0)], ops=[("rename-dir", 0, 0, 0)], extra="no tmp",
         window=0, neighbour=True)
@example(setup=[("mkdir", 0, 4, 0), ("create", 1, 0, 0)], ops=[("rename-dir", 0, 0, 0)],
         extra="not inside cache", window=50, neighbour=True)
@example(setup=[], ops=[("create", 0, 0, 0), ("create", 0, 1, 0), ("mkdir", 0, 0, 0), ("create", 1, 0, 0),
                       ("create", 1, 1, 0), ("delete", 0, 2, 0), ("move-dir", 0, 0, 0), ("move-file", 0, 0, 1)],
         extra="no build", window=10, neighbour=False)
@example(setup=[("mkdir", 0, 0, 0)], ops=[("create", 0, 0, 0), ("move-dir", 0, 0, 1), ("move-file", 1, 0, 0)],
         extra="keep .keep", window=10, neighbour=False)
@example(setup=[], ops=[("mkdir", 0, 0, 0), ("create", 1, 0, 0), ("rename-dir", 0, 0, 3), ("move-dir", 0, 0, 10)],
         extra="not inside cache", window=10, neighbour=False)
@example(setup=[], ops=[("create", 0, 0, 0), ("mkdir", 0, 23, 1), ("mkdir", 2, 26, 1), ("move-file", 8, 0, 0),
                       ("rename-dir", 0, 0, 1), ("rename-dir", 28, 1, 1)],
         extra="keep .keep", window=0, neighbour=False)
@example(setup=[("create", 0, 3, 0)], ops=[("mkdir", 0, 1, 0), ("rename-dir", 0, 0, 3), ("rename-dir", 0, 0, 2),
                                            ("move-file", 0, 0, 7)], extra="no tmp", window=10, neighbour=True)
@example(setup=[], ops=[("mkdir", 0, 0, 0), ("create", 1, 0, 0), ("pause", 0, 0, 0), ("move-dir", 0, 0, 0),
                       ("move-dir", 0, 0, 1), ("move-file", 0, 0, 0)], extra="no tmp", window=10, neighbour=False)
@example(setup=[], ops=[("mkdir", 0, 0, 0), ("create", 1, 26, 0), ("move-dir", 0, 0, 12), *[("create", 0, 0, 0)] * 4,
                       ("move-dir", 0, 0, 1)], extra="keep .keep", window=10, neighbour=False)
@example(setup=[("mkdir", 0, 0, 0), ("create", 1, 0, 0)],
         ops=[("rename-dir", 0, 0, 3), ("rename-dir", 0, 0, 1), ("rmtree", 0, 0, 0), ("mkdir", 0, 3, 0),
              ("rename-dir", 0, 0, 0)], extra="no build", window=50, neighbour=False)
@example(setup=[("symlink", 0, 0, 2), ("move-file", 0, 0, 5)],
         ops=[("pause", 0, 0, 0), ("mkdir", 0, 3, 0), ("create", 1, 2, 0), ("rename-dir", 0, 0, 0),
              ("move-file", 0, 0, 10), ("move-file", 0, 0, 10)], extra="keep .keep", window=0, neighbour=False)
@example(setup=[("mkdir", 0, 5, 0), ("mkdir", 1, 1, 0), ("mkdir", 2, 0, 0)],
         ops=[("rename-dir", 0, 0, 4), ("rmtree", 0, 1, 0), ("rename-dir", 0, 0, 1)], extra="not inside cache",
         window=10, neighbour=True)
@example(setup=[], ops=[("create", 0, 0, 0), ("mkdir", 0, 4, 0), ("move-file", 0, 0, 6), ("move-dir", 0, 0, 1),
                       ("rename-dir", 0, 0, 4), ("rmtree", 0, 0, 0)], extra="no tmp", window=10, neighbour=False)
@given(setup=st.lists(OP, max_size=20), ops=st.lists(OP, min_size=1, max_size=30),
       extra=st.sampled_from(sorted(EXTRA_RULES)), window=st.sampled_from([0, 10, 50]), neighbour=st.booleans())
def test_snapshot_plus_events_replays_to_the_live_state(
        replay_supervisor: tuple[SupervisorProc, Path], setup: list[tuple[str, int, int, int]],
        ops: list[tuple[str, int, int, int]], extra: str, window: int, neighbour: bool) -> None:
    supervisor, base = replay_supervisor
    root = base / f"ex{next(COUNTER)}"
    root.mkdir()
    operations = Operations(root)
    for op in setup:
        operations.apply(*op)
    rules = [["include-path", str(root)], ["exclude-hidden"], *EXTRA_RULES[extra][0]]
    with supervisor.client() as rpc:
        wid = rpc.call("create_watcher", rules=rules, coalesce_ms=window)["id"]
        # A watcher that needs everything (hidden and excluded directories too) on the same tree:
        # OS watches are shared, so the first watcher's events must not depend on its neighbours.
        others = [rpc.call("create_watcher", rules=[["include-path", str(root)]], coalesce_ms=50)["id"]
                  for _ in range(neighbour)]
        try:
            start, after = snapshot(rpc, wid)
            assert start == live_state(root, extra)
            for op in ops:
                operations.apply(*op)
            rpc.call("sync", id=wid)
            events = events_of(rpc, wid, after=after)
            # The example is in the message: a timing-dependent failure may not recur when
            # hypothesis replays it, and then it reports the failing case without its values.
            assert replay(start, events) == live_state(root, extra), (
                f"setup={setup}, ops={ops}, extra={extra!r}, window={window}, neighbour={neighbour}\n"
                + "\n".join(f"{e['action']} {os.path.relpath(e['path'], root)} {e['kind']}"
                            + (f" from {os.path.relpath(e['from'], root)}" if "from" in e else "") for e in events))
        finally:
            for watcher in (wid, *others):
                rpc.call("delete_watcher", id=watcher)
            shutil.rmtree(root)
