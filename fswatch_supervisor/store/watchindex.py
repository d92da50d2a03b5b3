"""The per-watcher index: for each watcher, the ascending seqs of the records it receives.

Events go to a few distinct *sets* of watchers (a hundred watchers over one tree, each event seen by
most of them), so seqs are kept per set: one ``array('Q')`` entry per event (8 bytes), however many
watchers receive it, instead of one per watcher. A watcher's events are the merge of the arrays of
the sets it belongs to, usually one or a few. A read after a cursor is a bisect into each, so its
cost follows what it returns, not how many events other watchers have. Retention cuts each array's
prefix and remembers, per watcher, the highest seq it removed: the watcher's 410 low-water mark.
"""

from __future__ import annotations

import heapq
import itertools
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable


class WatcherIndex:
    __slots__ = ("_discarded", "_member_of", "_sets")

    def __init__(self, discarded: dict[str, int] | None = None) -> None:
        self._sets: dict[tuple[str, ...], array[int]] = {}
        self._member_of: dict[str, list[array[int]]] = {}
        """Per watcher, the arrays of the sets it belongs to (a forgotten watcher has no entry)."""
        self._discarded: dict[str, int] = dict(discarded or {})

    def add(self, seq: int, watchers: Iterable[str]) -> None:
        """Record that ``seq`` belongs to ``watchers``; seqs arrive in ascending order."""
        key = watchers if type(watchers) is tuple else tuple(watchers)
        if not key:
            return  # a recovered record whose watchers were all deleted
        seqs = self._sets.get(key)
        if seqs is None:
            seqs = self._sets[key] = array("Q")
            for watcher in dict.fromkeys(key):
                self._member_of.setdefault(watcher, []).append(seqs)
        seqs.append(seq)

    def seqs_after(self, watcher: str, after: int, limit: int) -> list[int]:
        """Up to ``limit`` of the watcher's seqs greater than ``after``, ascending."""
        if limit <= 0:
            return []
        slices = []
        for seqs in self._member_of.get(watcher, ()):
            start = bisect_right(seqs, after)
            if start < len(seqs):
                slices.append(seqs[start:start + limit])
        if len(slices) == 1:
            return slices[0].tolist()
        return list(itertools.islice(heapq.merge(*slices), limit))

    def bounds(self, watcher: str) -> tuple[int | None, int | None]:
        arrays = [seqs for seqs in self._member_of.get(watcher, ()) if seqs]
        if not arrays:
            return None, None
        return min(seqs[0] for seqs in arrays), max(seqs[-1] for seqs in arrays)

    def discarded_through(self, watcher: str) -> int:
        return self._discarded.get(watcher, 0)

    def discarded_map(self) -> dict[str, int]:
        return dict(self._discarded)

    def cut_below(self, oldest: int) -> int:
        """Drop every seq below ``oldest`` (retention removed them); return how many entries went."""
        removed = 0
        emptied: list[tuple[str, ...]] = []
        for key, seqs in self._sets.items():
            cut = bisect_left(seqs, oldest)
            if not cut:
                continue
            last = seqs[cut - 1]
            for watcher in key:
                if watcher in self._member_of:  # not forgotten
                    self._discarded[watcher] = max(self._discarded.get(watcher, 0), last)
            del seqs[:cut]
            removed += cut
            if not seqs:
                emptied.append(key)
        for key in emptied:
            self._drop_set(key)
        return removed

    def forget(self, watcher: str) -> None:
        self._discarded.pop(watcher, None)
        for seqs in self._member_of.pop(watcher, []):
            key = next(k for k, s in self._sets.items() if s is seqs)
            if not any(other in self._member_of for other in key):
                del self._sets[key]  # nobody reads these any more

    def watchers(self) -> list[str]:
        """Watchers with at least one retained event."""
        return [watcher for watcher, arrays in self._member_of.items() if any(arrays)]

    def entries(self) -> int:
        """Seqs held (one per retained event with any watcher)."""
        return sum(len(seqs) for seqs in self._sets.values())

    def _drop_set(self, key: tuple[str, ...]) -> None:
        seqs = self._sets.pop(key)
        for watcher in dict.fromkeys(key):
            arrays = self._member_of.get(watcher)
            if arrays is None:
                continue
            arrays[:] = [a for a in arrays if a is not seqs]
            if not arrays:
                del self._member_of[watcher]
