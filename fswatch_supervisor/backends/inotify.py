"""The native Linux backend: inotify through ctypes, one file descriptor for every watch.

A drain thread (``drain.py``) reads the fd in big chunks as soon as it is readable and hands the
raw bytes to the loop, which parses them (``inotify_events``, compiled) into one batch per hand-over;
so a busy loop never lets the kernel queue overflow. The mask never includes open/close/access:
those events are pure noise for a mirror and, on a crawl of a 5,000-directory tree, they alone
overflowed the kernel queue (watchdog's default mask).

Watch descriptors follow inodes, not paths, and every watch has two names. Its *read* name is
the directory's path as of the last event read: a rename inside the watched set (a
``moved_from``/``moved_to`` pair with the same cookie) changes it at once, before the events that
follow in the same read are translated. Its *applied* name is the mirror's: it changes when the
mirror applies that rename (``moved_dir``), which may be a read later, after events that still
use the old names. Every call from the mirror (``add_dir``, ``remove_dir``, ``moved_dir``) speaks
applied names, so a name that a later rename of the same read took over (``mv a b; mv c a``)
still means what the mirror means by it.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import os
import select
import sys
from collections import OrderedDict
from collections.abc import MutableMapping
from typing import Final

from fswatch_supervisor.backends.base import OnEvents, RawEvent, WatchBackend
from fswatch_supervisor.backends.drain import QueueDrainer
from fswatch_supervisor.backends.inotify_events import (
    IN_ATTRIB,
    IN_CREATE,
    IN_DELETE,
    IN_DELETE_SELF,
    IN_DONT_FOLLOW,
    IN_EXCL_UNLINK,
    IN_IGNORED,
    IN_MODIFY,
    IN_MOVE_SELF,
    IN_MOVED_FROM,
    IN_MOVED_TO,
    IN_ONLYDIR,
    IN_Q_OVERFLOW,
    IN_UNMOUNT,
    parse,
)
from fswatch_supervisor.errors import WatchedElsewhere, WatchError, WatchLimitReached, WatchPermission
from fswatch_supervisor.logs import get_logger

IN_NONBLOCK: Final = 0o4000
IN_CLOEXEC: Final = 0o2000000

WATCH_MASK: Final = (
    IN_CREATE | IN_DELETE | IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO
    | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK
)
assert WATCH_MASK < 2**31, "add_watch passes it as a C int"
_PENDING_MOVES: Final = 1024
_FS_ENCODING: Final = sys.getfilesystemencoding()
_FS_ERRORS: Final = sys.getfilesystemencodeerrors()

log = get_logger(__name__)


def _read_limit(name: str) -> str:
    try:
        with open(f"/proc/sys/fs/inotify/{name}") as fh:
            return fh.read().strip()
    except OSError:
        return "unknown"


def watch_limit_message() -> str:
    """The 507 detail: which limit was hit and how to raise it."""
    current = _read_limit("max_user_watches")
    return (f"the inotify watch limit is reached (fs.inotify.max_user_watches = {current}); raise it with "
            "`sudo sysctl fs.inotify.max_user_watches=524288` (persist it in /etc/sysctl.d/)")


def instance_limit_message() -> str:
    current = _read_limit("max_user_instances")
    return (f"the inotify instance limit is reached (fs.inotify.max_user_instances = {current}); raise it "
            "with `sudo sysctl fs.inotify.max_user_instances=1024`")


class _Libc:
    """The three inotify calls, bound once.

    ``add_watch`` runs once per directory of a crawl, so it has no ``argtypes``: ctypes then passes
    the ``int``s and ``bytes`` as they are, without a conversion object per argument (3.9 -> 3.5 µs
    per call, most of which is the kernel's). Its mask fits a C ``int``."""

    def __init__(self) -> None:
        lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self.init1 = lib.inotify_init1
        self.init1.argtypes = [ctypes.c_int]
        self.init1.restype = ctypes.c_int
        self.add_watch = lib.inotify_add_watch
        self.add_watch.restype = ctypes.c_int
        self.rm_watch = lib.inotify_rm_watch
        self.rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
        self.rm_watch.restype = ctypes.c_int


class InotifyBackend(WatchBackend):
    name = "inotify"
    per_directory = True

    def __init__(self) -> None:
        self._libc = _Libc()
        fd = self._libc.init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            if err == errno.EMFILE:
                raise WatchLimitReached(instance_limit_message())
            raise WatchError(f"inotify_init1 failed: {os.strerror(err)}")
        self._fd = fd
        self._path_of: dict[int, str] = {}
        """wd -> read name: what ``parse`` prefixes event names with."""
        self._read_wd: dict[str, int] = {}
        self._name_of: dict[int, str] = {}
        """wd -> applied name (the mirror's)."""
        self._wd_of: dict[str, int] = {}
        self._dropped: set[int] = set()
        """wds we removed ourselves whose IN_IGNORED has not been read yet: a late IN_IGNORED must
        not drop a newer watch that the kernel gave the same number."""
        self._moves: OrderedDict[int, str] = OrderedDict()
        """cookie -> old path of a directory ``moved_from`` still waiting for its ``moved_to``."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_events: OnEvents | None = None
        self._drainer: QueueDrainer | None = None

    @property
    def fd(self) -> int:
        """The inotify file descriptor (tests read ``/proc/self/fdinfo/<fd>``)."""
        return int(self._fd)

    def start(self, loop: asyncio.AbstractEventLoop, on_events: OnEvents) -> None:
        self._loop = loop
        self._on_events = on_events
        self._drainer = QueueDrainer(self._fd, loop, self._on_chunks)
        self._drainer.start()

    def add_dir(self, path: str, *, rekey: bool = True) -> None:
        if path not in self._wd_of:
            self._watch(path, rekey=rekey)

    def recheck_dir(self, path: str) -> None:
        # The directory that was here may be elsewhere (a rescan reaching it there watches it
        # anew) or outside the watched set, where its events would come under this name.
        before = self._wd_of.get(path)
        try:
            wd = self._watch(path, rekey=True)
        except WatchError:
            self._drop(before)
            raise
        if wd != before:
            self._drop(before)

    def _watch(self, path: str, *, rekey: bool) -> int:
        # ``os.fsencode`` without its Python-level checks: ``path`` is a ``str`` here.
        wd = self._libc.add_watch(self._fd, path.encode(_FS_ENCODING, _FS_ERRORS), WATCH_MASK)
        if wd < 0:
            err = ctypes.get_errno()
            if err == errno.ENOSPC:
                raise WatchLimitReached(watch_limit_message())
            if err == errno.EACCES:
                raise WatchPermission(f"permission denied watching {path}")
            raise WatchError(f"cannot watch {path}: {os.strerror(err)}")
        held_as = self._name_of.get(wd)
        if held_as is not None and held_as != path and not rekey:
            raise WatchedElsewhere(f"{path} is watched as {held_as}: a rename not applied yet")
        # Otherwise, the same inode under a new name with no event left to explain it: the inode
        # wins, and the mirror's release of the old name then finds no watch there.
        self._dropped.discard(wd)
        self._unname(wd)
        self._path_of[wd] = self._name_of[wd] = path
        self._read_wd[path] = self._wd_of[path] = wd
        return int(wd)

    def remove_dir(self, path: str) -> None:
        self._drop(self._wd_of.get(path))

    def _drop(self, wd: int | None) -> None:
        if wd is None:
            return
        self._unname(wd)
        if self._libc.rm_watch(self._fd, wd) == 0:
            self._dropped.add(wd)

    def moved_dir(self, old: str, new: str, watched: list[tuple[str, str]]) -> None:
        # The read names moved when the pair was read (``_dir_moved``): the kernel puts both halves
        # of a rename next to each other, so the backend pairs every rename the mirror pairs. The
        # mirror names the watches it moves: no scan of every watch (~7 ms at 100,000).
        for before, after in watched:
            wd = self._wd_of.pop(before, None)
            if wd is not None:
                self._name_of[wd] = after
                self._wd_of[after] = wd

    def _unname(self, wd: int) -> None:
        """Forget both names of ``wd``; each name table keeps a name that means another watch now."""
        for wd_of, name_of in ((self._read_wd, self._path_of), (self._wd_of, self._name_of)):
            name = name_of.pop(wd, None)
            if name is not None and wd_of.get(name) == wd:
                del wd_of[name]

    def watch_count(self) -> int:
        return len(self._path_of)

    def is_watched(self, path: str) -> bool:
        return path in self._read_wd

    def events_undelivered(self) -> bool:
        return self._drainer is not None and self._drainer.undelivered()

    def events_pending(self) -> bool:
        if self._fd < 0:
            return False
        if self._drainer is not None:
            return self._drainer.pending()
        readable, _, _ = select.select([self._fd], [], [], 0)
        return bool(readable)

    def close(self) -> None:
        if self._fd < 0:
            return
        if self._drainer is not None:
            self._drainer.stop()
        os.close(self._fd)
        self._fd = -1
        for names in (self._path_of, self._read_wd, self._name_of, self._wd_of, self._moves):
            names.clear()
        self._dropped.clear()

    def _on_chunks(self, chunks: list[bytes]) -> None:
        events: list[RawEvent] = []
        for data in chunks:
            self._parse(data, events)
        if events and self._on_events is not None:
            self._on_events(events)

    def _parse(self, data: bytes, out: list[RawEvent]) -> None:
        parse(data, self._path_of, out, self._rare, self._dir_moved)

    def _rare(self, wd: int, mask: int, out: list[RawEvent]) -> None:
        """An event without a name: an overflow, a watch gone, or about the watched directory itself."""
        if mask & IN_Q_OVERFLOW:
            out.append(RawEvent("", "overflow"))
        elif mask & IN_IGNORED:
            self._forget(wd)
        elif mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT):
            # Under the mirror's name: it is about the directory the mirror knows, and a rename
            # the mirror does not follow (a root's, beside a single watched file) keeps that name.
            base = self._name_of.get(wd)
            if base is not None:
                # A deleted directory's inode number may be taken at once by one made at its path
                # (ext4 does): only the wd tells that the directory the name's watch was on is gone.
                deleted = bool(mask & IN_DELETE_SELF) and self._wd_of.get(base) == wd
                out.append(RawEvent(base, "dir_deleted" if deleted else "dir_gone", True))
        # Other events about the directory itself duplicate what its parent's watch reports.

    def _dir_moved(self, mask: int, cookie: int, path: str) -> None:
        if mask & IN_MOVED_FROM:
            self._moves[cookie] = path
            if len(self._moves) > _PENDING_MOVES:
                self._moves.popitem(last=False)
        else:
            old = self._moves.pop(cookie, None)
            if old is not None:
                _rename(self._read_wd, self._path_of, old, path)

    def _forget(self, wd: int) -> None:
        """The kernel dropped ``wd`` (its directory is gone): forget both of its names."""
        if wd in self._dropped:
            self._dropped.discard(wd)
            return
        self._unname(wd)


def _rename(wd_of: MutableMapping[str, int], name_of: MutableMapping[int, str], old: str, new: str) -> None:
    """Rename, in one of the two name tables, every watch at or below ``old`` to below ``new``. A
    watch named ``new`` already (the empty directory the rename replaced) keeps its name in
    ``name_of`` until the kernel drops it, but ``new`` now means the moved one."""
    prefix = old + "/"
    for path in [p for p in wd_of if p == old or p.startswith(prefix)]:
        wd = wd_of.pop(path)
        name_of[wd] = renamed = new + path[len(old):]
        wd_of[renamed] = wd
