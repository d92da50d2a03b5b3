"""``SortedPaths`` answers "what is below this directory" exactly, whatever order paths come and go in
(it sorts lazily: additions wait until the next query)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fswatch_supervisor.mirror.paths import SortedPaths, is_under

NAMES = ["a", "a-b", "a.c", "b", "a0"]  # '-' and '.' sort before '/'
paths = st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map(lambda c: "/r/" + "/".join(c))
ops = st.lists(st.tuples(st.sampled_from(["add", "discard", "under", "iter"]), paths), max_size=60)


@settings(max_examples=300, deadline=None)
@given(st.sets(paths, max_size=5), ops)
def test_queries_see_every_add_and_discard_made_before_them(initial: set[str], steps: list[tuple[str, str]]) -> None:
    found, expected = SortedPaths(initial), set(initial)
    for op, path in steps:
        if op == "add":
            found.add(path)
            expected.add(path)
        elif op == "discard":
            found.discard(path)
            expected.discard(path)
        elif op == "under":
            below = sorted(p for p in expected if is_under(p, path) and p != path)
            assert found.under(path) == below
            assert found.under(path, include_self=True) == ([path] if path in expected else []) + below
        else:
            assert list(found) == sorted(expected)
        assert len(found) == len(expected)
        assert (path in found) == (path in expected)


def test_a_path_added_and_discarded_between_queries_leaves_no_trace() -> None:
    found = SortedPaths(["/r/a"])
    assert found.under("/r") == ["/r/a"]
    found.add("/r/b")
    found.discard("/r/b")
    found.discard("/r/a")
    found.add("/r/a/x")
    assert found.under("/r") == ["/r/a/x"]
    assert "/r/b" not in found and len(found) == 1
