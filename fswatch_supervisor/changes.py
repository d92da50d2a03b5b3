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


@dataclass(slots=True)
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
