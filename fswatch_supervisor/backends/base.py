"""The OS watch layer's interface: raw per-directory events and the backend that produces them.

A backend knows nothing about watchers, rules or the model of the tree; it holds OS watches on
directories and hands ``RawEvent`` batches to the event loop thread. The mirror
(``fswatch_supervisor.mirror``) turns them into ``Change`` objects.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable
from typing import ClassVar

from fswatch_supervisor.backends.rawevent import RawAction, RawEvent

__all__ = ["OnEvents", "RawAction", "RawEvent", "WatchBackend"]

OnEvents = Callable[[list[RawEvent]], None]


class WatchBackend(abc.ABC):
    """Holds OS watches on directories and delivers their events, in batches, in the loop thread."""

    name: ClassVar[str]
    per_directory: ClassVar[bool]
    """True when ``add_dir`` watches exactly one directory (inotify); False when the OS only offers
    recursive watches (FSEvents via watchdog), so a watch covers every directory below it."""

    @abc.abstractmethod
    def start(self, loop: asyncio.AbstractEventLoop, on_events: OnEvents) -> None:
        """Begin delivering events; ``on_events`` is always called in ``loop``'s thread."""

    @abc.abstractmethod
    def add_dir(self, path: str, *, rekey: bool = True) -> None:
        """Watch ``path`` (idempotent). Raises ``WatchLimitReached`` (the message names the limit
        and how to raise it), ``WatchPermission``, or ``WatchError`` when the directory vanished.

        When the directory at ``path`` turns out to be watched already under another name, the
        watch takes the name ``path`` (the inode wins); with ``rekey`` false it raises
        ``WatchedElsewhere`` instead and changes nothing. Backends that cannot tell ignore ``rekey``."""

    def recheck_dir(self, path: str) -> None:
        """Events were lost (an overflow's rescan): make the watch at ``path`` the one of the
        directory there now, whatever renames were missed. Backends that watch by path need not."""
        return None

    @abc.abstractmethod
    def remove_dir(self, path: str) -> None:
        """Stop watching ``path``; idempotent, never raises for a directory that is gone."""

    @abc.abstractmethod
    def moved_dir(self, old: str, new: str, watched: list[tuple[str, str]]) -> None:
        """The mirror applies the rename of a watched subtree from ``old`` to ``new``: keep its
        watches, under their new names. ``watched`` holds the ``(old, new)`` path of every
        directory at or below ``old`` that the mirror has a watch on. Paths given to this backend
        are the mirror's, as of the events it has applied; a backend that names events by what it
        read since (inotify's re-keying of a rename as it reads the pair) keeps the two apart."""

    @abc.abstractmethod
    def watch_count(self) -> int:
        """The number of OS watches held right now."""

    @abc.abstractmethod
    def is_watched(self, path: str) -> bool:
        """Whether events about entries of directory ``path`` are being delivered."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release every watch and stop delivering; idempotent."""

    def events_pending(self) -> bool:
        """Whether events the OS already queued have not been delivered yet (when the backend can
        tell): the second half of a rename may be among them."""
        return False

    def events_undelivered(self) -> bool:
        """Whether events already read from the OS have not been delivered yet (when the backend
        can tell): those still in the OS's queue do not count."""
        return False
