"""Snapshot paging walks the model in tree order from the cursor: every entry once, in order."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from fswatch_supervisor.mirror.entries import Tree
from fswatch_supervisor.mirror.paths import tree_order

NAMES = ["a", "a-b", "a.c", "b", "a0", "ab"]  # '-' and '.' sort before '/', which plain order trips on


def build(paths: set[str]) -> Tree:
    tree = Tree()
    tree.mark_listed("/r")
    for path in sorted(paths, key=tree_order):  # parents first
        if any(other.startswith(path + "/") for other in paths):
            tree.put(path, "dir", 0, 0)
            tree.mark_listed(path)
        else:
            tree.put(path, "file", len(path), 0)
    return tree


trees = st.sets(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map(lambda c: "/r/" + "/".join(c)),
                max_size=25).map(lambda paths: {"/".join(p.split("/")[:k]) for p in paths
                                                for k in range(3, p.count("/") + 2)})


@settings(max_examples=200, deadline=None)
@given(trees, st.integers(1, 5))
def test_pages_of_any_size_list_every_entry_once_in_tree_order(paths: set[str], page: int) -> None:
    tree = build(paths)
    everything = [p for p, *_ in tree.records("/r")]
    assert everything == sorted(paths, key=tree_order)
    got: list[str] = []
    cursor = ""
    for _ in range(len(paths) + 1):  # a page that does not advance must fail, not loop forever
        chunk = [p for p, *_ in itertools.islice(tree.records("/r", cursor), page)]
        got += chunk
        if len(chunk) < page:
            break
        cursor = chunk[-1]
    assert got == everything


@settings(max_examples=100, deadline=None)
@given(trees, st.data())
def test_a_cursor_whose_entry_is_gone_resumes_where_it_was(paths: set[str], data: st.DataObject) -> None:
    ordered = sorted(paths, key=tree_order)
    if not ordered:
        return
    cursor = data.draw(st.sampled_from(ordered))
    tree = build(paths)
    tree.remove(cursor)
    rest = [p for p, *_ in tree.records("/r", cursor)]
    assert rest == [p for p in ordered if tree_order(p) > tree_order(cursor) and not p.startswith(cursor + "/")]


def test_paths_outside_the_top_resume_before_or_after_it() -> None:
    tree = build({"/r/a", "/r/a/x"})
    assert [p for p, *_ in tree.records("/r", "/q/zzz")] == ["/r/a", "/r/a/x"]
    assert [p for p, *_ in tree.records("/r", "/s")] == []

