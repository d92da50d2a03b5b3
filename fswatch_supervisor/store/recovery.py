"""Opening a store directory after a clean stop or a crash: find segments, cut torn tails, rebuild.

Every segment is scanned (records are checksummed and their seqs checked), each intact record is fed
to the watcher index, and anything after the intact prefix is truncated. Normally only the newest
segment can be torn; an older one can only be short after a power failure under
``FsyncPolicy.NEVER``, and is cut the same way (its lost seqs become a gap, never a reuse).

Segments of both record formats are listed, ordered by base. Two files share a base only when an
older binary, which does not see ``.v2`` segments, started its own segment where an empty ``.v2``
one began; the empty one is removed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fswatch_supervisor.logs import get_logger
from fswatch_supervisor.store.meta import StoreMeta
from fswatch_supervisor.store.segment import Segment, parse_name
from fswatch_supervisor.store.watchindex import WatcherIndex

log = get_logger(__name__)

PROGRESS_EVERY_S = 2.0


@dataclass(slots=True)
class Recovered:
    segments: list[Segment] = field(default_factory=list)
    torn_bytes: int = 0
    max_seq: int = 0
    """Highest seq found in any record or implied by a segment's name (its base minus one)."""


SegmentFile = tuple[int, int, Path]
"""``(base seq, record format, path)``."""


def list_segments(directory: Path) -> list[SegmentFile]:
    """Every segment file, oldest first."""
    found = []
    for entry in os.scandir(directory):
        parsed = parse_name(entry.name)
        if parsed is not None and entry.is_file():
            found.append((*parsed, Path(entry.path)))
    found.sort()
    return found


def recover(directory: Path, meta: StoreMeta, index: WatcherIndex) -> Recovered:
    """Open every live segment, index its records into ``index`` and cut torn tails."""
    files = list_segments(directory)
    files = _finish_interrupted_drop(files, meta.dropped_through)
    forgotten = meta.forgotten
    add = index.add

    def on_record(seq: int, watchers: Sequence[str]) -> None:
        if forgotten:
            watchers = [w for w in watchers if w not in forgotten]
        add(seq, watchers)

    result = Recovered()
    started = last_report = time.monotonic()
    events = 0
    for number, (base, version, path) in enumerate(files):
        segment, cut = Segment.recover(path, base, version, on_record)
        events += segment.count
        result.max_seq = max(result.max_seq, segment.last_seq)
        is_last = number == len(files) - 1
        if cut:
            result.torn_bytes += cut
            log_cut = log.warning if is_last else log.error
            log_cut("store_torn_tail_cut", segment=path.name, bytes_cut=cut, records_kept=segment.count,
                    newest_segment=is_last)
        shares_base = bool(result.segments) and result.segments[-1].base == base
        if segment.count == 0 and (not is_last or shares_base):
            segment.close()
            path.unlink()
            continue
        if not is_last:
            segment.seal()
        result.segments.append(segment)
        now = time.monotonic()
        if now - last_report >= PROGRESS_EVERY_S:
            last_report = now
            log.info("store_recovery_progress", segments_done=number + 1, segments=len(files),
                     events=events, elapsed_s=round(now - started, 1))
    return result


def _finish_interrupted_drop(files: list[SegmentFile], dropped_through: int) -> list[SegmentFile]:
    """Unlink segments that retention had already dropped in META when the process stopped.

    A segment is wholly dropped when the next one starts at or below ``dropped_through + 1``; the
    newest segment is never dropped.
    """
    keep = []
    for number, file in enumerate(files):
        following = files[number + 1][0] if number + 1 < len(files) else None
        if following is not None and following <= dropped_through + 1:
            file[2].unlink(missing_ok=True)
            log.info("store_dropped_segment_removed", segment=file[2].name)
            continue
        keep.append(file)
    return keep
