import os

import pytest

from bench.tree import FILES_PER_DIR, make_tree


@pytest.mark.parametrize("n_dirs", [30, 300, 5000])
def test_tree_has_the_asked_directories_files_and_depth(n_dirs: int) -> None:
    tree = make_tree(n_dirs, "test")
    try:
        walked = [d for d, _, _ in os.walk(tree.root)][1:]
        assert sorted(walked) == sorted(tree.dirs)
        assert len(tree.dirs) == n_dirs
        depths = {os.path.relpath(d, tree.root).count(os.sep) + 1 for d in tree.dirs}
        assert max(depths) in (3, 4)
        assert os.path.relpath(tree.deepest, tree.root).count(os.sep) + 1 == max(depths)
        assert all(os.path.isfile(f) for f in tree.files())
        assert len(tree.files()) == FILES_PER_DIR * n_dirs
    finally:
        tree.remove()
    assert not os.path.exists(tree.root)
