"""Fresh directory trees under /tmp for one workload run.

A tree of N directories, 3 full levels of equal fan-out plus a partial fourth level, two small
files in every directory: shaped like a source checkout, deep enough that a crawler's order matters.
The root holds an empty ``.watchmanconfig`` (hidden, never changed): watchman's documented way to
make watches of subtrees share the root's watch.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field

FILES_PER_DIR = 2


@dataclass
class Tree:
    root: str
    dirs: list[str] = field(default_factory=list)  # every directory below root, root excluded
    deepest: str = ""

    def files(self) -> list[str]:
        return [os.path.join(d, f"f{i}.txt") for d in self.dirs for i in range(FILES_PER_DIR)]

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _fanout(n_dirs: int) -> int:
    # largest f whose three full levels take at most half the directories, so level 4 is not empty
    f = 1
    while (f + 1) + (f + 1) ** 2 + (f + 1) ** 3 <= max(n_dirs // 2, 3):
        f += 1
    return f


def _layout(root: str, n_dirs: int) -> list[str]:
    f = _fanout(n_dirs)
    levels: list[list[str]] = [[root]]
    for _ in range(3):
        levels.append([os.path.join(p, f"d{i:02d}") for p in levels[-1] for i in range(f)])
    upper = [d for level in levels[1:] for d in level]
    remaining = max(n_dirs - len(upper), 0)
    parents = levels[3]
    fourth = [os.path.join(parents[k % len(parents)], f"e{k // len(parents):02d}") for k in range(remaining)]
    return (upper + fourth)[:n_dirs]


def make_tree(n_dirs: int, label: str = "tree", base_dir: str = "/tmp") -> Tree:
    """Create a new tree with ``n_dirs`` directories (2 files each) in a fresh directory."""
    root = tempfile.mkdtemp(prefix=f"fswatch-bench-{label}-", dir=base_dir)
    dirs = _layout(root, n_dirs)
    payload = b"fswatch bench\n"
    for d in dirs:
        os.mkdir(d)
        for i in range(FILES_PER_DIR):
            with open(os.path.join(d, f"f{i}.txt"), "wb") as fh:
                fh.write(payload)
    # marks the project root, so watchman's watch-project maps every subtree onto one watch
    with open(os.path.join(root, ".watchmanconfig"), "w") as fh:
        fh.write("{}\n")
    deepest = max(dirs, key=lambda d: (d.count(os.sep), d))
    return Tree(root=root, dirs=dirs, deepest=deepest)
