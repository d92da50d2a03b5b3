"""The normalised change: what the file-system mirror reports and the coalescer merges.

A ``Change`` is path-level and watcher-independent; the router later decides which watchers see
it (and turns a move across a watcher's edge into ``created`` or ``deleted`` for that watcher).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Action = Literal[
    "created", "updated", "deleted", "moved",
    "overflow", "root-deleted", "watch-error",
]
Kind = Literal["file", "dir", "symlink", "other"]


@dataclass(slots=True, init=False)
class Change:
    action: Action
    path: str
    kind: Kind | None
    time_ns: int
    from_path: str | None = None
    """Only for ``moved``: where the entry was before."""
    existed_before: bool = False
    """Whether ``path`` existed (as the mirror knew it) just before this change. For ``moved`` it
    says whether the move replaced an existing entry at ``path``. The coalescer uses it to decide
    created+deleted → nothing versus → deleted."""
    rescan: bool = False
    """Reported by a rescan (after an overflow or a restart), not by a live OS event."""
    detail: str | None = None
    """Human-readable detail for ``watch-error`` (which limit, how to raise it) and ``overflow``."""
    unfollowed: bool = False
    """Only for a directory's ``moved``: no watcher needed what is inside its old name, so what
    changed in there is unknown; it must not be netted with an earlier change at either end."""

    # Written out because mypyc compiles it: the ``__init__`` that ``dataclass`` generates runs
    # interpreted, and a burst makes a few Changes per OS event. A compiled class with its own
    # ``__init__`` is copied and pickled by calling it again: ``__reduce__``.
    def __init__(self, action: Action, path: str, kind: Kind | None, time_ns: int, from_path: str | None = None,
                 existed_before: bool = False, rescan: bool = False, detail: str | None = None,
                 unfollowed: bool = False) -> None:
        self.action = action
        self.path = path
        self.kind = kind
        self.time_ns = time_ns
        self.from_path = from_path
        self.existed_before = existed_before
        self.rescan = rescan
        self.detail = detail
        self.unfollowed = unfollowed

    def __reduce__(self) -> tuple[type[Change], tuple[object, ...]]:
        return Change, (self.action, self.path, self.kind, self.time_ns, self.from_path, self.existed_before,
                        self.rescan, self.detail, self.unfollowed)
