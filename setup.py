"""Compile the supervisor's hot path with mypyc when the machine can (README, *Native build*).

Everything else (metadata, dependencies, packages) is in pyproject.toml. The compiled modules are the
same typed sources: without a C compiler, or with ``FSWATCH_PURE_PYTHON=1``, the install is pure
Python and behaves the same, only slower.
"""

from __future__ import annotations

import os
import runpy
import sys

from setuptools import Extension, setup


def native_extensions() -> list[Extension]:
    if os.environ.get("FSWATCH_PURE_PYTHON") or not sys.platform.startswith(("linux", "darwin")):
        return []
    from mypyc.build import mypycify  # a build requirement (pyproject.toml)

    native = runpy.run_path(os.path.join("fswatch_supervisor", "native.py"))
    hot_path, library = native["HOT_PATH"], native["LIBRARY"]
    try:
        extensions = mypycify([m.replace(".", "/") + ".py" for m in hot_path], opt_level="3",
                              group_name=library.removesuffix("__mypyc"))
    except (Exception, SystemExit) as exc:  # mypyc exits on a type error (say, newer stubs)
        print(f"fswatch: not compiling the hot path ({exc!r}); installing pure Python", file=sys.stderr)
        return []
    for extension in extensions:
        extension.optional = True  # a failed compile warns, and the pure module is used
    return extensions


setup(ext_modules=native_extensions())
