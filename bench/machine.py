"""What the numbers were measured on: cores, kernel, file system of /tmp, inotify limits."""

from __future__ import annotations

import os
import platform
import sys

import psutil  # type: ignore[import-untyped]  # no stubs in the venv


def _read(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return "?"


def _fs_type(path: str) -> str:
    best, fstype = "", "?"
    for part in psutil.disk_partitions(all=True):
        mount = part.mountpoint
        if (path == mount or path.startswith(mount.rstrip("/") + "/")) and len(mount) > len(best):
            best, fstype = mount, part.fstype
    return fstype


def describe(base_dir: str = "/tmp") -> dict[str, object]:
    return {
        "base_dir": base_dir,
        "base_dir_fs": _fs_type(os.path.realpath(base_dir)),
        "nproc": os.cpu_count(),
        "kernel": platform.release(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": sys.version.split()[0],
        "max_user_watches": _read("/proc/sys/fs/inotify/max_user_watches"),
        "max_queued_events": _read("/proc/sys/fs/inotify/max_queued_events"),
    }
