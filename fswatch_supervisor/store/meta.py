"""The store's small durable state beside the segments: ``DIR/META``, replaced atomically.

It holds what the records alone cannot tell after retention removed them:

- ``seq_reserved``: every seq ever handed out is at most this. Written (and fsynced) *before* an
  append crosses it, in blocks, so even a power failure that loses unsynced records cannot make the
  store reissue their ids: after a crash numbering resumes above the reservation (a gap, never a
  reuse). A clean ``close()`` lowers it to the exact last seq so a normal restart leaves no gap.
- ``dropped_through``: the highest seq of any segment retention removed. Written before the files
  are unlinked; on open, segments wholly at or below it are finished off.
- ``discarded``: per watcher, the highest of its seqs retention removed (its 410 low-water mark).
- ``forgotten``: watchers whose index was dropped, with the store's last seq at that moment; their
  ids are skipped when the index is rebuilt, until retention removed every record that names them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import msgpack

from fswatch_supervisor.store import framing
from fswatch_supervisor.store.segment import fsync_dir

META_NAME: Final = "META"
META_VERSION: Final = 1


@dataclass(slots=True)
class StoreMeta:
    seq_reserved: int = 0
    dropped_through: int = 0
    discarded: dict[str, int] = field(default_factory=dict)
    forgotten: dict[str, int] = field(default_factory=dict)

    def prune_forgotten(self) -> None:
        """Forget the forgotten once retention removed every record that could name them."""
        self.forgotten = {w: seq for w, seq in self.forgotten.items() if seq > self.dropped_through}

    def to_payload(self) -> bytes:
        body: dict[str, Any] = {
            "v": META_VERSION,
            "seq_reserved": self.seq_reserved,
            "dropped_through": self.dropped_through,
            "discarded": self.discarded,
            "forgotten": self.forgotten,
        }
        return msgpack.packb(body, use_bin_type=True)

    @classmethod
    def from_payload(cls, payload: bytes) -> StoreMeta:
        body = msgpack.unpackb(payload, raw=False)
        if not isinstance(body, dict) or body.get("v") != META_VERSION:
            raise ValueError("unknown META layout")
        return cls(
            seq_reserved=int(body["seq_reserved"]),
            dropped_through=int(body["dropped_through"]),
            discarded={str(k): int(v) for k, v in body["discarded"].items()},
            forgotten={str(k): int(v) for k, v in body["forgotten"].items()},
        )


def load_meta(directory: Path) -> StoreMeta | None:
    """The stored META; ``None`` when there is none. ``ValueError`` when it is unreadable."""
    try:
        data = (directory / META_NAME).read_bytes()
    except FileNotFoundError:
        return None
    result = framing.scan(data)
    if len(result.records) != 1 or result.torn_bytes:
        raise ValueError("META is truncated or fails its checksum")
    try:
        return StoreMeta.from_payload(result.records[0][1])
    except (ValueError, KeyError, TypeError, AttributeError, msgpack.ExtraData) as exc:
        raise ValueError(f"META does not decode: {exc}") from exc


def save_meta(directory: Path, meta: StoreMeta) -> None:
    """Replace META atomically and durably (write temp, fsync, rename, fsync the directory)."""
    target = directory / META_NAME
    tmp = directory / (META_NAME + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, framing.encode_record(meta.to_payload()))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, target)
    fsync_dir(directory)
