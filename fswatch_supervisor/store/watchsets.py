"""The watcher sets of one segment: how a record names the watchers that receive it.

Events go to a few distinct sets of watchers, and a set of a hundred ids is ~1.2 KB, so a segment
interns them. The first record of a segment that goes to a set carries the ids (a msgpack array of
str), which defines that set's number: 0 for the segment's first definition, 1 for the next, and
so on. Later records of the segment carry only the number (a msgpack int, one byte for the first
128 sets). Nothing refers across segments, so each segment decodes alone: retention can drop any
prefix of segments and recovery rebuilds every table by scanning its segment from the start.

A definition lives in an event record, not in a record of its own, so one record is still one
seq. If a definition is torn or corrupt, every record after it is cut with it, because recovery
trusts nothing after a bad record. So a number can only refer to a record in the intact prefix.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

Receivers = int | Sequence[str]
"""A record's receivers field: a set number, or the ids (which define the segment's next set)."""


class SegmentSets:
    """The sets one segment has defined so far, in order; the writer's and recovery's view."""

    __slots__ = ("_numbers", "_sets")

    def __init__(self) -> None:
        self._sets: list[tuple[str, ...]] = []
        self._numbers: dict[tuple[str, ...], int] = {}

    def __len__(self) -> int:
        return len(self._sets)

    def field_for(self, watchers: tuple[str, ...]) -> Receivers:
        """What the next record for ``watchers`` carries: the number if defined, else the ids.

        Giving the ids counts as defining the set. Use this inside :meth:`pending` so that a
        write that fails does not leave numbers defined that no record on disk defines.
        """
        number = self._numbers.get(watchers)
        if number is not None:
            return number
        self._define(watchers)
        return watchers

    def resolve(self, field: object) -> tuple[str, ...]:
        """The watchers a decoded receivers field names, defining a set if it carries ids.

        ``ValueError`` when the field is neither ids nor a number defined earlier in the segment.
        """
        if type(field) is int:
            if 0 <= field < len(self._sets):
                return self._sets[field]
            raise ValueError(f"watcher set {field} is used before it is defined")
        if type(field) is list and all(type(w) is str for w in field):
            watchers = tuple(field)
            self._define(watchers)
            return watchers
        raise ValueError(f"receivers field of type {type(field).__name__} is neither ids nor a set number")

    @contextmanager
    def pending(self) -> Iterator[None]:
        """Undo the definitions made inside the block if it raises (the records were not written)."""
        mark = len(self._sets)
        try:
            yield
        except BaseException:
            for watchers in self._sets[mark:]:
                if self._numbers.get(watchers, -1) >= mark:
                    del self._numbers[watchers]
            del self._sets[mark:]
            raise

    def _define(self, watchers: tuple[str, ...]) -> None:
        # A duplicate definition (never written by us, but valid) keeps the first number.
        self._numbers.setdefault(watchers, len(self._sets))
        self._sets.append(watchers)
