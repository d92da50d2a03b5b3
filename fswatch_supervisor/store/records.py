"""What the event store keeps per event, and how a record's payload is laid out.

A record's payload is one msgpack array::

    [seq, time_ns, action, path, kind, extra, receivers]

``extra`` is ``nil`` or a map holding only the optional public keys (``from``, ``rescan``,
``detail``). ``receivers`` names every watcher the event goes to, so the per-watcher index is
recoverable from the records alone, and one record serves every watcher it belongs to (overlapping
watchers share it). ``seq`` is stored although it is implied by the position in the segment:
recovery checks it, so a misplaced or stale record is caught rather than served under the wrong id.

How ``receivers`` is written depends on the segment's format, which its file name tells (see
``segment.py``):

- ``PER_ID_FORMAT`` (1, ``seg-N.log``, written before watcher sets were interned): always the array
  of watcher ids. Still read; never written by the store.
- ``SET_FORMAT`` (2, ``seg-N.v2.log``): the ids the first time a set occurs in the segment, then
  only the set's number (see ``watchsets.py``).

Reading an event's public map never needs ``receivers``, so both formats serve reads alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import msgpack

from fswatch_supervisor.eventmodel import Event, event_map
from fswatch_supervisor.packing import pack
from fswatch_supervisor.store.framing import encode_record
from fswatch_supervisor.store.watchsets import SegmentSets

PER_ID_FORMAT: Final = 1
SET_FORMAT: Final = 2


class FsyncPolicy(StrEnum):
    """When appended records are forced to stable storage.

    Every policy survives ``kill -9`` of the process: ``append()`` returns only after ``write()``, so
    the data is in the kernel's page cache. The policies differ on power failure or an OS crash.
    """

    ALWAYS = "always"
    """``fdatasync`` before ``append()`` returns: nothing acknowledged is ever lost."""
    INTERVAL = "interval"
    """A background thread ``fdatasync``s dirty segments every ``fsync_interval_s``: at most that much
    acknowledged data is lost on power failure."""
    NEVER = "never"
    """Leave write-back to the OS (typically up to 30 s of data on power failure)."""


@dataclass(slots=True, init=False)
class NewEvent:
    """One event to append. ``watchers`` are the ids of every watcher that receives it. Treat it as
    immutable (not ``frozen``: a frozen dataclass's ``__init__`` costs a microsecond per event)."""

    action: str
    path: str
    kind: str | None
    time_ns: int
    watchers: tuple[str, ...]
    from_path: str | None = None
    rescan: bool = False
    detail: str | None = None

    # Written out because mypyc compiles it; the one ``dataclass`` generates runs interpreted (and
    # so ``__reduce__``: copy and pickle rebuild a compiled class by calling it).
    def __init__(self, action: str, path: str, kind: str | None, time_ns: int, watchers: tuple[str, ...],
                 from_path: str | None = None, rescan: bool = False, detail: str | None = None) -> None:
        self.action = action
        self.path = path
        self.kind = kind
        self.time_ns = time_ns
        self.watchers = watchers
        self.from_path = from_path
        self.rescan = rescan
        self.detail = detail

    def __reduce__(self) -> tuple[type[NewEvent], tuple[object, ...]]:
        return NewEvent, (self.action, self.path, self.kind, self.time_ns, self.watchers, self.from_path,
                          self.rescan, self.detail)


def extra_of(event: NewEvent) -> dict[str, Any] | None:
    """The optional public keys of ``event``, or ``None`` when it has none (the common case)."""
    extra: dict[str, Any] = {}
    if event.from_path is not None:
        extra["from"] = event.from_path
    if event.rescan:
        extra["rescan"] = True
    if event.detail is not None:
        extra["detail"] = event.detail
    return extra or None


def pack_record(seq: int, event: NewEvent, extra: dict[str, Any] | None, sets: SegmentSets | None = None) -> bytes:
    """The payload of ``event`` at ``seq``: in ``SET_FORMAT`` for a segment whose ``sets`` are given,
    else in ``PER_ID_FORMAT`` (which the store no longer writes; tests of the upgrade path do)."""
    receivers = list(event.watchers) if sets is None else sets.field_for(event.watchers)
    return pack([seq, event.time_ns, event.action, event.path, event.kind, extra, receivers])


def frame_records(first: int, events: Sequence[NewEvent], extras: Sequence[dict[str, Any] | None],
                  sets: SegmentSets) -> tuple[bytes, list[int], list[int]]:
    """The framed records of ``events`` at seqs from ``first`` in ``SET_FORMAT``, joined for one
    write, with each record's framed size and its event's time (the segment's tables)."""
    framed: list[bytes] = []
    lengths: list[int] = []
    times: list[int] = []
    seq = first
    for event, extra in zip(events, extras, strict=True):
        record = encode_record(pack_record(seq, event, extra, sets))
        framed.append(record)
        lengths.append(len(record))
        times.append(event.time_ns)
        seq += 1
    return b"".join(framed), lengths, times


def decode_events(seqs: list[int], payloads: list[bytes], since_ns: int | None, limit: int) -> list[Event]:
    """The public maps of the records ``payloads`` (at ``seqs``), skipping those older than ``since_ns``,
    at most ``limit`` of them. ``ValueError`` names the first record that is not what its place says.

    This is the cost of serving a stored event, so it is one loop with no object per record but the
    event map itself (the map is what every transport sends: msgpack, JSON and SSE alike).
    """
    unpackb = msgpack.unpackb
    out: list[Event] = []
    append = out.append
    for seq, payload in zip(seqs, payloads, strict=True):
        try:
            got, time_ns, action, path, kind, extra, _watchers = unpackb(payload, use_list=False)
        except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
            raise ValueError(f"record {seq} is not an event record: {exc}") from exc
        if got != seq or type(time_ns) is not int:
            raise ValueError(f"record at the place of seq {seq} says seq {got!r}")
        if since_ns is not None and time_ns < since_ns:
            continue
        append(event_map(seq, action, path, kind, time_ns, extra))
        if len(out) == limit:
            break
    return out


def index_fields(payload: bytes) -> tuple[int, int, object]:
    """``(seq, time_ns, receivers)`` of a payload: the part recovery needs, without building a Record.

    ``receivers`` is as decoded: the segment's format says what it may be (``per_id_receivers``,
    ``SegmentSets.resolve``).
    """
    try:
        fields = msgpack.unpackb(payload, raw=False, use_list=True)
        seq, time_ns, receivers = fields[0], fields[1], fields[6]
    except (ValueError, TypeError, IndexError, KeyError, msgpack.ExtraData, msgpack.FormatError,
            msgpack.StackError) as exc:
        raise ValueError(f"not an event record: {exc}") from exc
    if type(seq) is not int or type(time_ns) is not int or len(fields) != 7:
        raise ValueError("not an event record: wrong field types")
    return seq, time_ns, receivers


def per_id_receivers(receivers: object) -> list[str]:
    """The watchers of a ``PER_ID_FORMAT`` record (its receivers must be the array of ids)."""
    if type(receivers) is not list:
        raise ValueError("not an event record: wrong field types")
    return receivers
