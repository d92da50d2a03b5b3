"""watchdog 7 used directly: one recursive Observer with an event_filter (no open/close events)."""

from __future__ import annotations

import logging
import time

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from bench.children import emit

# without a filter watchdog asks for IN_OPEN/IN_CLOSE too, which overflowed the queue while it crawled
EVENT_FILTER: list[type[FileSystemEvent]] = [
    FileCreatedEvent, FileModifiedEvent, FileDeletedEvent, FileMovedEvent,
    DirCreatedEvent, DirDeletedEvent, DirMovedEvent,
]


class Relay(FileSystemEventHandler):
    def on_any_event(self, event: FileSystemEvent) -> None:
        ts = time.time_ns()
        dest = event.dest_path
        if dest:
            emit.event(event.event_type, str(dest), str(event.src_path), ts=ts)
        else:
            emit.event(event.event_type, str(event.src_path), ts=ts)


class OverflowSpy(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            emit.overflow(record.getMessage())


def main() -> None:
    logging.getLogger("watchdog").addHandler(OverflowSpy(logging.WARNING))
    observer = Observer()
    observer.start()
    emit.ready()
    for cmd in emit.commands():
        if cmd[0] in ("watch", "create"):
            start = time.perf_counter_ns()
            observer.schedule(Relay(), cmd[2], recursive=True, event_filter=EVENT_FILTER)
            emit.ack(cmd[1], time.perf_counter_ns() - start)
    observer.stop()
    observer.join(timeout=5)


if __name__ == "__main__":
    main()
