"""``RawEvent``: one OS event, what every backend delivers and the mirror consumes.

Its own module so that it is compiled with the hot path (``native.py``): a burst makes one per OS
event, and the compiled pairing and normaliser read its fields natively. ``base`` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RawAction = Literal["created", "modified", "attrib", "deleted", "moved_from", "moved_to", "overflow", "dir_gone",
                    "dir_deleted"]


@dataclass(slots=True, init=False)
class RawEvent:
    """One OS event about ``path`` (an entry inside a watched directory).

    ``dir_gone`` is about a watched directory itself (deleted, moved away or unmounted);
    ``dir_deleted`` says more where the backend knows it: the directory whose watch holds the
    path now was deleted (a new one there, even with the same inode number, is another);
    ``overflow`` has an empty path: the OS dropped events. ``cookie`` pairs ``moved_from`` with
    ``moved_to`` (0 when the backend does not know).
    """

    path: str
    action: RawAction
    is_dir: bool = False
    cookie: int = 0

    # Written out because mypyc compiles it; the one ``dataclass`` generates runs interpreted (and
    # so ``__reduce__``: copy and pickle rebuild a compiled class by calling it).
    def __init__(self, path: str, action: RawAction, is_dir: bool = False, cookie: int = 0) -> None:
        self.path = path
        self.action = action
        self.is_dir = is_dir
        self.cookie = cookie

    def __reduce__(self) -> tuple[type[RawEvent], tuple[str, RawAction, bool, int]]:
        return RawEvent, (self.path, self.action, self.is_dir, self.cookie)
