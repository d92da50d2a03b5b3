"""The per-watcher index: for each watcher, the ascending seqs of the records it receives.

A read after a cursor is a bisect into the watcher's own ``array('Q')`` (8 bytes per entry), so its
cost follows what it returns, not how many events other watchers have. Retention cuts each array's
prefix and remembers the highest seq it removed: the watcher's 410 low-water mark.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable


class WatcherIndex:
    __slots__ = ("_discarded", "_seqs")

    def __init__(self, discarded: dict[str, int] | None = None) -> None:
        self._seqs: dict[str, array[int]] = {}
        self._discarded: dict[str, int] = dict(discarded or {})

    def add(self, seq: int, watchers: Iterable[str]) -> None:
        """Record that ``seq`` belongs to ``watchers``; seqs arrive in ascending order."""
        index = self._seqs
        for watcher in watchers:
            seqs = index.get(watcher)
            if seqs is None:
                seqs = index[watcher] = array("Q")
            seqs.append(seq)

    def seqs_after(self, watcher: str, after: int, limit: int) -> list[int]:
        """Up to ``limit`` of the watcher's seqs greater than ``after``, ascending."""
        seqs = self._seqs.get(watcher)
        if not seqs or limit <= 0:
            return []
        start = bisect_right(seqs, after)
        return seqs[start:start + limit].tolist()

    def bounds(self, watcher: str) -> tuple[int | None, int | None]:
        seqs = self._seqs.get(watcher)
        if not seqs:
            return None, None
        return seqs[0], seqs[-1]

    def discarded_through(self, watcher: str) -> int:
        return self._discarded.get(watcher, 0)

    def discarded_map(self) -> dict[str, int]:
        return dict(self._discarded)

    def cut_below(self, oldest: int) -> int:
        """Drop every seq below ``oldest`` (retention removed them); return how many entries went."""
        removed = 0
        emptied: list[str] = []
        for watcher, seqs in self._seqs.items():
            cut = bisect_left(seqs, oldest)
            if cut:
                self._discarded[watcher] = max(self._discarded.get(watcher, 0), seqs[cut - 1])
                del seqs[:cut]
                removed += cut
                if not seqs:
                    emptied.append(watcher)
        for watcher in emptied:
            del self._seqs[watcher]
        return removed

    def forget(self, watcher: str) -> None:
        self._seqs.pop(watcher, None)
        self._discarded.pop(watcher, None)

    def watchers(self) -> list[str]:
        """Watchers with at least one retained event."""
        return list(self._seqs)

    def entries(self) -> int:
        return sum(len(seqs) for seqs in self._seqs.values())
