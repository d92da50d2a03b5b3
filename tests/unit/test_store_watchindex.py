"""The index keeps seqs per set of watchers; what each watcher sees must be what a plain
per-watcher list would say, through adds, retention cuts and forgotten watchers."""

from __future__ import annotations

from bisect import bisect_left

from hypothesis import given, settings
from hypothesis import strategies as st

from fswatch_supervisor.store.watchindex import WatcherIndex

WATCHERS = ["a", "b", "c", "d"]


class PlainIndex:
    """The reference: one ascending list per watcher."""

    def __init__(self) -> None:
        self.seqs: dict[str, list[int]] = {}
        self.discarded: dict[str, int] = {}

    def add(self, seq: int, watchers: tuple[str, ...]) -> None:
        for w in dict.fromkeys(watchers):
            self.seqs.setdefault(w, []).append(seq)

    def cut_below(self, oldest: int) -> None:
        for w, seqs in list(self.seqs.items()):
            cut = bisect_left(seqs, oldest)
            if cut:
                self.discarded[w] = max(self.discarded.get(w, 0), seqs[cut - 1])
                del seqs[:cut]
            if not seqs:
                del self.seqs[w]

    def forget(self, w: str) -> None:
        self.seqs.pop(w, None)
        self.discarded.pop(w, None)


ops = st.lists(st.one_of(
    st.tuples(st.just("add"), st.lists(st.sampled_from(WATCHERS), min_size=1, max_size=4)),
    st.tuples(st.just("cut"), st.integers(0, 60)),
    st.tuples(st.just("forget"), st.sampled_from(WATCHERS)),
), max_size=60)


@settings(max_examples=300, deadline=None)
@given(ops, st.integers(0, 60), st.integers(1, 7))
def test_each_watcher_reads_what_a_per_watcher_list_would_hold(plan: list[tuple[str, object]], after: int,
                                                               limit: int) -> None:
    index, plain = WatcherIndex(), PlainIndex()
    seq = 0
    forgotten: set[str] = set()
    for op, arg in plan:
        if op == "add":
            # a deleted watcher receives nothing any more (ids are never reused)
            watchers = tuple(w for w in arg if w not in forgotten)  # type: ignore[attr-defined]
            if watchers:
                seq += 1
                index.add(seq, watchers)
                plain.add(seq, watchers)
        elif op == "cut":
            index.cut_below(int(arg))  # type: ignore[call-overload]
            plain.cut_below(int(arg))  # type: ignore[call-overload]
        else:
            index.forget(str(arg))
            plain.forget(str(arg))
            forgotten.add(str(arg))
        for w in WATCHERS:
            mine = plain.seqs.get(w, [])
            assert index.seqs_after(w, after, limit) == [s for s in mine if s > after][:limit]
            assert index.bounds(w) == ((mine[0], mine[-1]) if mine else (None, None))
            assert index.discarded_through(w) == plain.discarded.get(w, 0)
        assert sorted(index.watchers()) == sorted(plain.seqs)


def test_a_hundred_watchers_seeing_every_event_cost_one_entry_per_event() -> None:
    index = WatcherIndex()
    watchers = tuple(f"w_{i}" for i in range(100))
    for seq in range(1, 1001):
        index.add(seq, watchers)
    assert index.entries() == 1000
    assert index.seqs_after("w_42", 990, 100) == list(range(991, 1001))
