"""The kernel's inotify event records, and their parse into ``RawEvent``s.

The parse is the first loop every OS event of a burst passes through, so it is compiled with the hot
path (``native.py``); the backend (``inotify.py``) keeps the watches and the rare events.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable
from typing import Final

from fswatch_supervisor.backends.rawevent import RawAction, RawEvent

IN_MODIFY: Final = 0x00000002
IN_ATTRIB: Final = 0x00000004
IN_MOVED_FROM: Final = 0x00000040
IN_MOVED_TO: Final = 0x00000080
IN_CREATE: Final = 0x00000100
IN_DELETE: Final = 0x00000200
IN_DELETE_SELF: Final = 0x00000400
IN_MOVE_SELF: Final = 0x00000800
IN_UNMOUNT: Final = 0x00002000
IN_Q_OVERFLOW: Final = 0x00004000
IN_IGNORED: Final = 0x00008000
IN_ONLYDIR: Final = 0x01000000
IN_DONT_FOLLOW: Final = 0x02000000
IN_EXCL_UNLINK: Final = 0x04000000
IN_ISDIR: Final = 0x40000000

_HEADER: Final = struct.Struct("iIII")
_NAMED: Final[tuple[tuple[int, RawAction], ...]] = (
    (IN_CREATE, "created"), (IN_MODIFY, "modified"), (IN_ATTRIB, "attrib"), (IN_DELETE, "deleted"),
    (IN_MOVED_FROM, "moved_from"), (IN_MOVED_TO, "moved_to"),
)
_NAMED_BITS: Final = IN_CREATE | IN_MODIFY | IN_ATTRIB | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO
_ACTIONS: Final[dict[int, tuple[RawAction, ...]]] = {
    bits: tuple(action for bit, action in _NAMED if bits & bit)
    for bits in range(_NAMED_BITS + 1) if bits & ~_NAMED_BITS == 0
}
"""The actions of every combination of the named bits, in ``_NAMED`` order."""
_ENDS_WITH_CONTENT: Final[dict[int, bool]] = {
    bits: bool(actions) and actions[-1] in ("created", "modified") for bits, actions in _ACTIONS.items()
}
"""Whether the last action of a combination leaves a file whose content a later write only updates."""
_RARE: Final = IN_Q_OVERFLOW | IN_IGNORED
_FS_ENCODING: Final = sys.getfilesystemencoding()

OnRare = Callable[[int, int, list[RawEvent]], None]
"""``(wd, mask, out)`` for an event without a name: an overflow, a watch gone, the directory itself."""
OnDirMoved = Callable[[int, int, str], None]
"""``(mask, cookie, path)`` for each half of a directory's rename, as soon as it is read."""


def parse(data: bytes, path_of: dict[int, str], out: list[RawEvent], on_rare: OnRare,
          on_dir_moved: OnDirMoved) -> None:
    """Append the events of ``data`` (whole records, as one read returns them) to ``out``.
    ``path_of`` maps watch descriptors to directories; events of unknown ones are dropped."""
    unpack, header = _HEADER.unpack_from, _HEADER.size
    offset, last = 0, len(data) - header
    written = ""  # the file whose creation or write is the last event out, if any
    while offset <= last:
        wd: int
        mask: int
        cookie: int
        length: int
        wd, mask, cookie, length = unpack(data, offset)
        offset += header
        if mask & _RARE or not length:
            on_rare(wd, mask, out)
            written = ""
            offset += length
            continue
        end = offset + length
        nul = data.find(0, offset, end)
        name = data[offset:end if nul < 0 else nul]
        offset = end
        base = path_of.get(wd)
        if base is None:
            continue
        path = base + "/" + name.decode(_FS_ENCODING, "surrogateescape")
        bits = mask & _NAMED_BITS
        if bits == IN_MODIFY and path == written:
            # Another write right after the file's creation or write: the mirror reads the
            # file's state once at the end of the batch anyway, so this one adds nothing.
            continue
        is_dir = mask & IN_ISDIR != 0
        for action in _ACTIONS[bits]:
            out.append(RawEvent(path, action, is_dir, cookie))
        written = path if _ENDS_WITH_CONTENT[bits] and not is_dir else ""
        if is_dir and mask & (IN_MOVED_FROM | IN_MOVED_TO):
            on_dir_moved(mask, cookie, path)
