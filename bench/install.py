"""Getting peers from their registries (Debian, npm, PyPI) inside the benchmark's own setup.

Each function answers ``None`` when the thing is usable, or the reason it is not: the peer is then
skipped with that reason printed, never fatal for the run. npm packages go to a cache directory
outside the repository (``$FSWATCH_BENCH_NODE``, default ``~/.cache/fswatch-bench/node``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys

INSTALL_TIMEOUT = 600.0
_apt_updated = False


def node_dir() -> str:
    default = os.path.join(os.path.expanduser("~"), ".cache", "fswatch-bench", "node")
    return os.environ.get("FSWATCH_BENCH_NODE", default)


def _run(argv: list[str], cwd: str | None = None) -> str | None:
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, timeout=INSTALL_TIMEOUT,
                              env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{argv[0]}: {exc}"
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).decode("utf-8", "replace").strip().splitlines()[-1:]
        return f"{' '.join(argv[:3])} failed: {tail[0] if tail else proc.returncode}"
    return None


def ensure_command(command: str, apt_package: str, allow_install: bool) -> str | None:
    """Make ``command`` available, installing the Debian package that ships it if allowed."""
    global _apt_updated
    if shutil.which(command):
        return None
    if not allow_install:
        return f"{command} not installed (apt package {apt_package}; run without --no-install)"
    if os.geteuid() != 0:
        return f"{command} not installed and not root to apt-get install {apt_package}"
    reason = _run(["apt-get", "install", "-y", "-qq", apt_package])
    if reason and not _apt_updated:
        _apt_updated = True
        _run(["apt-get", "update", "-qq"])
        reason = _run(["apt-get", "install", "-y", "-qq", apt_package])
    if reason:
        return reason
    return None if shutil.which(command) else f"{apt_package} installed but {command} not found"


def ensure_npm(package: str, allow_install: bool) -> str | None:
    """Make an npm package importable from ``node_dir()`` (needs node and npm on PATH)."""
    if not shutil.which("node"):
        return "node not installed"
    target = node_dir()
    if os.path.isdir(os.path.join(target, "node_modules", package)):
        return None
    if not allow_install:
        return f"npm package {package} not installed in {target}"
    if not shutil.which("npm"):
        return "npm not installed"
    os.makedirs(target, exist_ok=True)
    manifest = os.path.join(target, "package.json")
    if not os.path.exists(manifest):
        with open(manifest, "w") as fh:
            fh.write('{"name": "fswatch-bench-peers", "private": true}\n')
    return _run(["npm", "install", "--no-audit", "--no-fund", "--silent", package], cwd=target)


def ensure_pip(module: str, package: str, allow_install: bool) -> str | None:
    """Make ``module`` importable by this interpreter, pip-installing ``package`` if allowed."""
    if importlib.util.find_spec(module) is not None:
        return None
    if not allow_install:
        return f"python package {package} not installed"
    reason = _run([sys.executable, "-m", "pip", "install", "-q", package])
    importlib.invalidate_caches()
    if reason:
        return reason
    return None if importlib.util.find_spec(module) is not None else f"{package} installed but not importable"


def command_version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, timeout=10).stdout.decode().strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return out.splitlines()[0] if out else "?"
