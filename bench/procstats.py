"""What a tool costs the machine: RSS of all its processes and the inotify watches they hold."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable

import psutil  # type: ignore[import-untyped]  # no stubs in the venv


def process_tree(pids: Iterable[int]) -> list[psutil.Process]:
    """The given processes and all their descendants (those still alive)."""
    seen: dict[int, psutil.Process] = {}
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            seen[pid] = proc
            for child in proc.children(recursive=True):
                seen[child.pid] = child
        except psutil.Error:
            continue
    return list(seen.values())


def rss_bytes(pids: Iterable[int]) -> int:
    return _summed(pids, lambda proc: int(proc.memory_info().rss))


def pss_bytes(pids: Iterable[int]) -> int:
    """Proportional set size: pages shared between the processes (a library both map) count
    once in all, not once per process as in the RSS sum."""
    return _summed(pids, lambda proc: int(proc.memory_full_info().pss))


def _summed(pids: Iterable[int], measure: Callable[[psutil.Process], int]) -> int:
    total = 0
    for proc in process_tree(pids):
        try:
            total += measure(proc)
        except (psutil.Error, AttributeError):  # AttributeError: no pss outside Linux
            continue
    return total


def inotify_watches(pids: Iterable[int]) -> int:
    """Count ``inotify wd:`` lines in /proc/PID/fdinfo/* over the process tree (each is one OS watch)."""
    total = 0
    for proc in process_tree(pids):
        fdinfo = f"/proc/{proc.pid}/fdinfo"
        try:
            fds = os.listdir(fdinfo)
        except OSError:
            continue
        for fd in fds:
            try:
                with open(os.path.join(fdinfo, fd), "rb") as fh:
                    total += sum(1 for line in fh if line.startswith(b"inotify wd:"))
            except OSError:
                continue
    return total


class PeakRss:
    """Samples the summed RSS of a process tree every ``interval`` seconds until stopped."""

    def __init__(self, pids: Callable[[], list[int]], interval: float = 0.05) -> None:
        self._pids = pids
        self._interval = interval
        self._stop = threading.Event()
        self.peak = 0
        self.last = 0
        self._thread = threading.Thread(target=self._run, name="peak-rss", daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sample()

    def sample(self) -> int:
        self.last = rss_bytes(self._pids())
        self.peak = max(self.peak, self.last)
        return self.last

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.sample()
