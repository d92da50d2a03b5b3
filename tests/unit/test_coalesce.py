"""The coalescer: the merge table, editors' atomic saves, window timing, and replay correctness."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fswatch_supervisor.changes import Change, Kind
from fswatch_supervisor.coalesce import Coalescer

MS = 1_000_000


def created(path: str, kind: Kind = "file", existed: bool = False) -> Change:
    return Change("created", path, kind, 0, existed_before=existed)


def updated(path: str, kind: Kind = "file") -> Change:
    return Change("updated", path, kind, 0, existed_before=True)


def deleted(path: str, kind: Kind | None = "file") -> Change:
    return Change("deleted", path, kind, 0, existed_before=True)


def moved(src: str, dest: str, kind: Kind = "file", replaced: bool = False) -> Change:
    return Change("moved", dest, kind, 0, from_path=src, existed_before=replaced)


def brief(changes: list[Change]) -> list[tuple[str, ...]]:
    return [(c.action, c.path, c.from_path) if c.from_path else (c.action, c.path) for c in changes]


def burst(raw: list[Change], window_ms: int = 50, step_ms: int = 1) -> list[Change]:
    """Feed ``raw`` 1 ms apart (all inside one window) and return everything emitted."""
    co = Coalescer(window_ms)
    out: list[Change] = []
    for i, change in enumerate(raw):
        change.time_ns = i * step_ms * MS
        out += co.add(change, change.time_ns)
    return out + co.flush()


class TestTable:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ([created("/a"), updated("/a"), updated("/a")], [("created", "/a")]),
            ([updated("/a"), updated("/a"), updated("/a")], [("updated", "/a")]),
            ([created("/a"), updated("/a"), deleted("/a")], []),
            ([deleted("/a"), created("/a"), deleted("/a")], [("deleted", "/a")]),
            ([updated("/a"), deleted("/a")], [("deleted", "/a")]),
            ([deleted("/a"), created("/a")], [("updated", "/a")]),
            ([deleted("/a"), created("/a", "dir")], [("deleted", "/a"), ("created", "/a")]),
            ([deleted("/a", None), created("/a")], [("updated", "/a")]),
            ([created("/a", existed=True)], [("updated", "/a")]),
            ([moved("/a", "/b")], [("moved", "/b", "/a")]),
            ([updated("/a"), moved("/a", "/b")], [("moved", "/b", "/a"), ("updated", "/b")]),
            ([moved("/a", "/b"), updated("/b")], [("moved", "/b", "/a"), ("updated", "/b")]),
            ([created("/a"), moved("/a", "/b")], [("created", "/b")]),
            ([created("/t"), moved("/t", "/b", replaced=True)], [("updated", "/b")]),
            ([moved("/a", "/b"), moved("/b", "/c")], [("moved", "/c", "/a")]),
            ([moved("/a", "/b"), moved("/b", "/a")], []),
            ([moved("/a", "/b"), deleted("/b")], [("deleted", "/a")]),
            ([moved("/a", "/b"), created("/a")], [("moved", "/b", "/a"), ("created", "/a")]),
            ([moved("/b", "/c"), moved("/a", "/b")], [("moved", "/c", "/b"), ("moved", "/b", "/a")]),
            (
                [moved("/a", "/t"), moved("/b", "/a"), moved("/t", "/b")],  # swap through a temp name
                [("moved", "/b", "/a"), ("created", "/a")],
            ),
            ([created("/d", "dir"), deleted("/d", "dir")], []),
            ([created("/d", "dir"), moved("/d", "/e", "dir")], [("created", "/e")]),
            ([deleted("/d", "dir"), created("/d", "dir")], [("deleted", "/d"), ("created", "/d")]),
            (  # what was below a is gone, even if no raw change said so
                [moved("/a", "/h", "dir"), moved("/h", "/b", "dir"), deleted("/b", "dir"), created("/h", "dir"),
                 moved("/h", "/a", "dir")],
                [("deleted", "/a"), ("created", "/a")],
            ),
            ([Change("moved", "/a", "file", 0, from_path=None)], [("created", "/a")]),
            ([Change("moved", "/a", "file", 0, from_path="/a", existed_before=True)], [("updated", "/a")]),
        ],
    )
    def test_row(self, raw: list[Change], expected: list[tuple[str, ...]]) -> None:
        assert brief(burst(raw)) == expected

    def test_move_over_existing_says_it_replaced(self) -> None:
        (event,) = burst([moved("/a", "/b", replaced=True)])
        assert event.existed_before
        (event,) = burst([moved("/a", "/b")])
        assert not event.existed_before

    def test_deleted_keeps_kind_of_what_was_there(self) -> None:
        (event,) = burst([updated("/d", "dir"), deleted("/d", None)])
        assert (event.action, event.kind) == ("deleted", "dir")

    def test_time_is_that_of_the_last_merged_change(self) -> None:
        (event,) = burst([created("/a"), updated("/a"), updated("/a")], step_ms=5)
        assert event.time_ns == 10 * MS

    def test_rescan_only_when_every_merged_change_was_a_rescan(self) -> None:
        first, second = updated("/a"), updated("/a")
        first.rescan = second.rescan = True
        assert burst([first, second])[0].rescan
        first, second = updated("/a"), updated("/a")
        first.rescan = True
        assert not burst([first, second])[0].rescan


class TestEditorSaves:
    """Atomic-save dances must become ONE ``updated`` of the target."""

    def test_vim(self) -> None:
        raw = [
            created("/p/4913"), deleted("/p/4913"),  # vim's write-permission probe
            moved("/p/x", "/p/x~"),  # backup by rename
            created("/p/x"), updated("/p/x"), updated("/p/x"),
            deleted("/p/x~"),
        ]
        assert brief(burst(raw)) == [("updated", "/p/x")]

    def test_vscode_temp_rename_over(self) -> None:
        raw = [created("/p/x.tmp"), updated("/p/x.tmp"), moved("/p/x.tmp", "/p/x", replaced=True)]
        assert brief(burst(raw)) == [("updated", "/p/x")]

    def test_jetbrains_tmp_rename_over(self) -> None:
        tmp = "/p/x___jb_tmp___"
        raw = [created(tmp), updated(tmp), moved(tmp, "/p/x", replaced=True)]
        assert brief(burst(raw)) == [("updated", "/p/x")]

    def test_jetbrains_old_new_dance(self) -> None:
        tmp, old = "/p/x___jb_tmp___", "/p/x___jb_old___"
        raw = [created(tmp), updated(tmp), moved("/p/x", old), moved(tmp, "/p/x"), deleted(old)]
        assert brief(burst(raw)) == [("updated", "/p/x")]

    def test_truncate_in_place(self) -> None:
        assert brief(burst([updated("/p/x"), updated("/p/x")])) == [("updated", "/p/x")]

    def test_atomic_save_of_a_new_file_is_created(self) -> None:
        raw = [created("/p/x.tmp"), updated("/p/x.tmp"), moved("/p/x.tmp", "/p/x")]
        assert brief(burst(raw)) == [("created", "/p/x")]


class TestTiming:
    def test_window_zero_delivers_every_raw_change_at_once(self) -> None:
        co = Coalescer(0)
        raw = [created("/a"), updated("/a"), deleted("/a")]
        assert [co.add(c, 0) for c in raw] == [[c] for c in raw]
        assert co.pending() == 0
        assert co.next_deadline() is None

    def test_window_does_not_slide(self) -> None:
        co = Coalescer(50)
        assert co.add(Change("updated", "/a", "file", 0), 0) == []
        assert co.add(Change("updated", "/a", "file", 40 * MS), 40 * MS) == []
        assert co.next_deadline() == 50 * MS
        assert co.due(49 * MS) == []
        (event,) = co.due(50 * MS)
        assert event.time_ns == 40 * MS
        assert co.add(Change("updated", "/a", "file", 80 * MS), 80 * MS) == []
        assert co.next_deadline() == 130 * MS

    def test_add_returns_overdue_windows_before_opening_a_new_one(self) -> None:
        co = Coalescer(50)
        co.add(Change("created", "/a", "file", 0), 0)
        out = co.add(Change("updated", "/a", "file", 60 * MS), 60 * MS)
        assert brief(out) == [("created", "/a")]
        assert brief(co.flush()) == [("updated", "/a")]

    def test_due_closes_in_deadline_order(self) -> None:
        co = Coalescer(50)
        for i, path in enumerate(["/c", "/a", "/b"]):
            co.add(Change("updated", path, "file", i * MS), i * MS)
        assert co.pending() == 3
        assert [c.path for c in co.due(100 * MS)] == ["/c", "/a", "/b"]
        assert co.pending() == 0

    def test_a_move_joins_windows_under_the_earlier_deadline(self) -> None:
        co = Coalescer(50)
        co.add(Change("created", "/t", "file", 0), 0)
        co.add(Change("updated", "/x", "file", 30 * MS, existed_before=True), 30 * MS)
        co.add(Change("moved", "/x", "file", 40 * MS, from_path="/t", existed_before=True), 40 * MS)
        assert co.next_deadline() == 50 * MS
        assert brief(co.due(50 * MS)) == [("updated", "/x")]

    def test_metadata_passes_through_after_pending_windows(self) -> None:
        co = Coalescer(50)
        co.add(Change("updated", "/r/a", "file", 0), 0)
        out = co.add(Change("overflow", "/r", None, MS, detail="queue overflow"), MS)
        assert brief(out) == [("updated", "/r/a"), ("overflow", "/r")]
        assert co.pending() == 0

    def test_directory_move_flushes_changes_below_it_first(self) -> None:
        co = Coalescer(50)
        co.add(Change("created", "/r/d/f", "file", 0), 0)
        out = co.add(Change("moved", "/r/e", "dir", MS, from_path="/r/d"), MS)
        assert brief(out) == [("created", "/r/d/f")]
        assert brief(co.flush()) == [("moved", "/r/e", "/r/d")]

    def test_temp_directory_filled_then_renamed_stays_replayable(self) -> None:
        out = burst([created("/r/tmp", "dir"), created("/r/tmp/f"), moved("/r/tmp", "/r/out", "dir")])
        assert brief(out) == [("created", "/r/tmp"), ("created", "/r/tmp/f"), ("moved", "/r/out", "/r/tmp")]

    def test_directory_delete_of_unknown_kind_is_a_barrier(self) -> None:
        out = burst([updated("/r/d/f"), deleted("/r/d/f"), deleted("/r/d", None)])
        assert brief(out) == [("deleted", "/r/d/f"), ("deleted", "/r/d")]

    # A change below a directory pending in another window: the directory's change goes out first,
    # even when the change joined an earlier window (the replay test's mkdir a; >f; mv a g; mv f g/f).
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ([created("/r/f"), moved("/r/a", "/r/g", "dir"), moved("/r/f", "/r/g/f")],
             [("moved", "/r/g", "/r/a"), ("created", "/r/g/f")]),
            ([updated("/r/y"), moved("/r/a", "/r/g", "dir"), moved("/r/g/f", "/r/y", replaced=True)],
             [("moved", "/r/g", "/r/a"), ("moved", "/r/y", "/r/g/f")]),
            ([created("/r/x"), created("/r/d", "dir"), created("/r/d/e", "dir"), moved("/r/x", "/r/d/e/x")],
             [("created", "/r/d"), ("created", "/r/d/e"), ("created", "/r/d/e/x")]),
        ],
    )
    def test_a_change_below_a_pending_directory_goes_out_after_it(
            self, raw: list[Change], expected: list[tuple[str, ...]]) -> None:
        co = Coalescer(50)
        for i, change in enumerate(raw):
            change.time_ns = i * MS
            assert co.add(change, i * MS) == []
        assert co.next_deadline() == 50 * MS  # the first window's deadline still bounds the wait
        assert brief(co.due(50 * MS)) == expected
        assert co.pending() == 0 and co.next_deadline() is None

    # A change that would put a directory's change and a change below it in one batch: the batch
    # holding the directory closes first. A batch is replayed on a flat model of paths, which put
    # the change below the directory first (deletions, then moves) or tied the two batches in a
    # cycle of "after" links. The first is the replay test's mkdir a; >a/f; (its windows close)
    # mv a f; mv f g; mv g/f f, whose last move joins the directory's batch through its destination.
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ([moved("/r/a", "/r/f", "dir"), moved("/r/f", "/r/g", "dir"), moved("/r/g/f", "/r/f")],
             [("moved", "/r/g", "/r/a"), ("moved", "/r/f", "/r/g/f")]),
            ([moved("/r/b", "/r/g", "dir"), moved("/r/g/a", "/r/b", "dir"), deleted("/r/b", "dir")],
             [("moved", "/r/g", "/r/b"), ("deleted", "/r/g/a")]),
            ([moved("/r/f", "/r/a"), created("/r/f", "dir"), created("/r/f/b", "dir"), moved("/r/a", "/r/f/b/a")],
             [("moved", "/r/a", "/r/f"), ("created", "/r/f"), ("created", "/r/f/b"), ("moved", "/r/f/b/a", "/r/a")]),
        ],
    )
    def test_a_directory_and_a_change_below_it_never_share_a_batch(
            self, raw: list[Change], expected: list[tuple[str, ...]]) -> None:
        assert brief(burst(raw)) == expected

    def test_pending_parents_close_in_arrival_order_when_their_deadlines_tie(self) -> None:
        # One OS read stamps all its changes with the same time, so windows often share a deadline.
        co = Coalescer(50)
        for change in [created("/r/x"), created("/r/d", "dir"), created("/r/d/e", "dir"), created("/r/d/e/f", "dir"),
                       moved("/r/x", "/r/d/e/f/x")]:
            change.time_ns = 0
            assert co.add(change, 0) == []
        assert brief(co.due(50 * MS)) == [("created", "/r/d"), ("created", "/r/d/e"), ("created", "/r/d/e/f"),
                                          ("created", "/r/d/e/f/x")]

    def test_negative_window_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="window_ms"):
            Coalescer(-1)


# -- property: replaying the output reproduces the final tree -----------------------------------

FILES = [f"/r/{d}/{n}" for d in ("a", "b") for n in ("x", "y", "z")]


@dataclass
class Op:
    verb: str
    i: int
    j: int
    gap_ms: int


ops = st.lists(
    st.builds(Op, st.sampled_from(["touch", "touch", "rm", "mv", "mv", "mv"]), st.integers(0, 5),
              st.integers(0, 5), st.sampled_from([0, 1, 2, 5, 20, 60])),
    min_size=8, max_size=40,
)


def simulate(initial: set[str], plan: list[Op]) -> tuple[list[Change], dict[str, object]]:
    """Turn a plan into raw changes on a model tree; return them and the final path -> content map.

    Content identities are tracked so that a consumer believing the wrong file is at a path (a
    lost swap, say) is caught even when the set of paths is right.
    """
    files: dict[str, object] = {p: ("initial", p) for p in initial}
    raw, now = [], 0
    for n, op in enumerate(plan):
        now += op.gap_ms * MS
        src, dest = FILES[op.i], FILES[op.j]
        if op.verb == "touch":
            raw.append(Change("updated" if src in files else "created", src, "file", now,
                              existed_before=src in files))
            files[src] = ("write", n)
        elif op.verb == "rm" and src in files:
            del files[src]
            raw.append(Change("deleted", src, "file", now, existed_before=True))
        elif op.verb == "mv" and src in files and src != dest:
            raw.append(Change("moved", dest, "file", now, from_path=src, existed_before=dest in files))
            files[dest] = files.pop(src)
    return raw, files


READ = "consumer re-read the file"


def replay(initial: set[str], events: list[Change]) -> dict[str, object]:
    """A strict consumer: every event must make sense against what it has seen so far."""
    files: dict[str, object] = {p: ("initial", p) for p in initial}
    for e in events:
        if e.action == "created":
            assert e.path not in files, e
            files[e.path] = READ
        elif e.action == "deleted":
            assert e.path in files, e
            del files[e.path]
        elif e.action == "updated":
            assert e.path in files, e
            files[e.path] = READ
        else:
            assert e.action == "moved" and e.from_path in files, e
            assert (e.path in files) == e.existed_before, e
            files[e.path] = files.pop(e.from_path)
    return files


def drive(window_ms: int, raw: list[Change]) -> list[Change]:
    """Feed ``raw`` as a supervisor loop would, checking that no window outlives its deadline."""
    co, out, window_ns = Coalescer(window_ms), [], window_ms * MS
    for change in raw:
        while (deadline := co.next_deadline()) is not None and deadline <= change.time_ns:
            out += co.due(deadline)
            assert (co.next_deadline() or deadline + 1) > deadline
        out += co.add(change, change.time_ns)
        if co.pending():
            assert (co.next_deadline() or 0) <= change.time_ns + window_ns
    return out + co.flush()


@settings(max_examples=400, deadline=None)
@example(  # a swap through a temp name: the set of paths is unchanged, their contents are not
    {FILES[0], FILES[1]}, [Op("mv", 0, 2, 0), Op("mv", 1, 0, 1), Op("mv", 2, 1, 1)], 50
)
@example({FILES[0]}, [Op("touch", 0, 0, 0), Op("mv", 0, 1, 1), Op("touch", 1, 0, 1)], 50)
@given(st.sets(st.sampled_from(FILES)), ops, st.sampled_from([0, 1, 10, 50]))
def test_replaying_output_reaches_the_final_tree(initial: set[str], plan: list[Op], window_ms: int) -> None:
    raw, final = simulate(initial, plan)
    out = drive(window_ms, raw)
    seen = replay(initial, out)
    assert seen.keys() == final.keys()
    assert all(seen[p] in (READ, final[p]) for p in final), (seen, final)
    if window_ms == 0:
        assert out == raw
    assert len(out) <= len(raw) + sum(c.action == "moved" for c in raw)


# -- property: with directories, replaying the output (a move carries its subtree) reaches the final tree

NAMES = ("a", "f", "g", "b")
TreeOp = tuple[str, int, int, int, int]  # verb, parent, name, source (indices into the tree), gap (ms)


def simulate_tree(plan: list[TreeOp]) -> tuple[list[Change], dict[str, Kind]]:
    """Raw changes as the mirror reports them (an entry's deletion before its directory's, a move of a
    directory as one change) and the final path -> kind map."""
    tree: dict[str, Kind] = {}
    raw: list[Change] = []
    now = 0
    for verb, i, j, k, gap_ms in plan:
        now += gap_ms * MS
        dirs = ["/r", *sorted(p for p, kind in tree.items() if kind == "dir")]
        path = f"{dirs[i % len(dirs)]}/{NAMES[j % len(NAMES)]}"
        entries = sorted(tree)
        source = entries[k % len(entries)] if entries else ""
        if verb == "write" and tree.get(path, "file") == "file":
            raw.append(Change("updated" if path in tree else "created", path, "file", now, existed_before=path in tree))
            tree[path] = "file"
        elif verb == "mkdir" and path not in tree:
            raw.append(Change("created", path, "dir", now))
            tree[path] = "dir"
        elif verb == "rm" and source:
            for p in sorted((p for p in tree if p == source or p.startswith(source + "/")), key=lambda p: -len(p)):
                raw.append(Change("deleted", p, tree.pop(p), now, existed_before=True))
        elif verb == "mv" and source and path != source and not path.startswith(source + "/"):
            kind, there = tree[source], tree.get(path)
            if there is not None and (there == "dir") != (kind == "dir") or any(p.startswith(path + "/") for p in tree):
                continue  # rename(2) refuses: a directory onto a non-directory or a non-empty one, and so on
            tree.pop(path, None)
            for p in [p for p in tree if p == source or p.startswith(source + "/")]:
                tree[path + p[len(source):]] = tree.pop(p)
            raw.append(Change("moved", path, kind, now, from_path=source, existed_before=there is not None))
    return raw, tree


def replay_tree(events: list[Change]) -> dict[str, Kind | None]:
    """A consumer's view, as in the replay e2e test: a deleted or moved directory takes its subtree."""
    tree: dict[str, Kind | None] = {}

    def drop(path: str) -> dict[str, Kind | None]:
        below = {p: k for p, k in tree.items() if p == path or p.startswith(path + "/")}
        for p in below:
            del tree[p]
        return below

    for e in events:
        if e.action == "deleted":
            drop(e.path)
            continue
        if e.action == "moved":
            assert e.from_path is not None
            carried = drop(e.from_path)
            drop(e.path)
            tree.update({e.path + p[len(e.from_path):]: k for p, k in carried.items()})
        tree[e.path] = e.kind
    return tree


@settings(max_examples=300, deadline=None)
@example([("mkdir", 0, 0, 0, 0), ("write", 1, 1, 0, 0), ("mv", 0, 1, 0, 20), ("mv", 0, 2, 0, 0),
          ("mv", 0, 1, 1, 0)], 10)  # the replay e2e test's mkdir a; >a/f; mv a f; mv f g; mv g/f f
@given(st.lists(st.tuples(st.sampled_from(["write", "mkdir", "rm", "mv", "mv", "mv"]), st.integers(0, 9),
                          st.integers(0, 3), st.integers(0, 9), st.sampled_from([0, 0, 1, 2, 5, 20])),
                min_size=1, max_size=25),
       st.sampled_from([1, 10, 50]))
def test_replaying_output_with_directories_reaches_the_final_tree(plan: list[TreeOp], window_ms: int) -> None:
    raw, final = simulate_tree(plan)
    assert replay_tree(drive(window_ms, raw)) == final


# -- property: the "anything pending below?" index matches a brute-force answer -----------------

TREE = ["/r", "/r/a", "/r/a/x", "/r/a/y", "/r/a/d", "/r/a/d/z", "/r/b", "/r/b/x", "/"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["created", "updated", "deleted", "moved", "tick"]),
                          st.sampled_from(TREE), st.sampled_from(TREE), st.sampled_from(["file", "dir", None]),
                          st.sampled_from([0, 1, 3, 20])), min_size=1, max_size=40))
def test_pending_below_index_matches_brute_force(steps: list[tuple[str, str, str, Kind | None, int]]) -> None:
    co, now = Coalescer(10), 0
    for action, path, other, kind, gap_ms in steps:
        now += gap_ms * MS
        if action == "tick":
            co.due(now)
        elif action == "moved" and path != other:
            co.add(Change("moved", path, kind, now, from_path=other), now)
        elif action != "moved":
            co.add(Change(action, path, kind, now), now)
        pending = set(co._by_path)
        for d in TREE:
            expected = any(p.startswith(d.rstrip("/") + "/") and p != d for p in pending)
            assert bool(co._below.get(d)) == expected, (d, pending, co._below)
    co.flush()
    assert not co._below and not co._by_path
