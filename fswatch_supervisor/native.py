"""The supervisor's hot path, compiled with mypyc when the install could (see ``setup.py``).

Every event of a burst passes through these modules: parsing, the mirror, coalescing, routing and the
store. Compiled, the same typed sources need about a quarter less CPU per event (README, *Native
build*); the pure modules behave the same, only slower. This module imports nothing outside the
standard library, because ``setup.py`` reads ``HOT_PATH`` from it before any dependency exists.

A compiled module is an extension file beside its source, and Python prefers it: after an edit of the
source it runs the old code until the next build. ``stale_modules`` names those, so that the
supervisor's log and the test run say so instead of running yesterday's code.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
from collections.abc import Iterable
from typing import Final

HOT_PATH: Final = (
    "fswatch_supervisor.backends.inotify_events",
    "fswatch_supervisor.backends.rawevent",
    "fswatch_supervisor.changes",
    "fswatch_supervisor.coalesce",
    "fswatch_supervisor.eventmodel",
    "fswatch_supervisor.mirror.entries",
    "fswatch_supervisor.mirror.mirror",
    "fswatch_supervisor.mirror.normalise",
    "fswatch_supervisor.mirror.pairing",
    "fswatch_supervisor.mirror.paths",
    "fswatch_supervisor.mirror.watchset",
    "fswatch_supervisor.netting",
    "fswatch_supervisor.packing",
    "fswatch_supervisor.pipeline",
    "fswatch_supervisor.registry",
    "fswatch_supervisor.rules",
    "fswatch_supervisor.store.eventstore",
    "fswatch_supervisor.store.framing",
    "fswatch_supervisor.store.records",
    "fswatch_supervisor.store.watchindex",
)
"""Modules compiled by ``setup.py`` (as file paths there). Of the inotify backend only its parse and
the events it makes: a backend stays a class one can subclass."""
LIBRARY: Final = "fswatch_supervisor_native__mypyc"
"""The shared library mypyc builds for the group ``setup.py`` names ``fswatch_supervisor_native``."""


def _origin(module: str) -> str | None:
    spec = importlib.util.find_spec(module)
    return spec.origin if spec is not None else None


def compiled_modules(modules: Iterable[str] = HOT_PATH) -> list[str]:
    """Those of ``modules`` that load from a compiled extension."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return [m for m in modules if (origin := _origin(m)) is not None and origin.endswith(suffixes)]


def stale_modules(modules: Iterable[str] = HOT_PATH) -> list[str]:
    """Compiled ``modules`` whose source changed after they were built (they run the old code)."""
    # mypyc puts the code of all modules into one shared library; each module's own extension is a
    # thin shim, rewritten only when its interface changes. The build time is the newer of the two.
    library = _origin(LIBRARY)
    built_library = os.stat(library).st_mtime_ns if library is not None else 0
    stale = []
    for module in compiled_modules(modules):
        extension = _origin(module)
        assert extension is not None
        source = os.path.join(os.path.dirname(extension), module.rpartition(".")[2] + ".py")
        built = max(os.stat(extension).st_mtime_ns, built_library)
        if os.path.exists(source) and os.stat(source).st_mtime_ns > built:
            stale.append(module)
    return stale
