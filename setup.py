"""Compile the supervisor's hot path with mypyc when the machine can (README, *Native build*).

Everything else (metadata, dependencies, packages) is in pyproject.toml. The compiled modules are the
same typed sources: without a C compiler, or with ``FSWATCH_PURE_PYTHON=1``, the install is pure
Python and behaves the same, only slower.
"""

from __future__ import annotations

import os
import runpy
import sys
import sysconfig

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

PACKAGES = ("fswatch_supervisor", "fswatch_api", "fswatch_worker")


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


class BuildNative(build_ext):
    """Removes compiled modules that this build does not make before building: a shim left by an
    earlier build with a longer hot path would be packaged (or, in place, imported) beside a shared
    library that no longer has its code, and one left after a failed compile would shadow its
    newer source."""

    def run(self) -> None:
        keep = {os.path.abspath(self.get_ext_fullpath(ext.name)) for ext in self.extensions}
        suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
        tops = [self.build_lib] + (["."] if self.inplace else [])
        for top in tops:
            for package in PACKAGES:
                for root, _dirs, files in os.walk(os.path.join(top, package)):
                    for name in files:
                        path = os.path.abspath(os.path.join(root, name))
                        if name.endswith(suffix) and path not in keep:
                            os.remove(path)
        super().run()


setup(ext_modules=native_extensions(), cmdclass={"build_ext": BuildNative})
