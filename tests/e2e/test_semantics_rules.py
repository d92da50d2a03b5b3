"""The rule language end to end: what a watcher's rules select, on a real tree through a real supervisor."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from fswatch_supervisor.client import SupervisorClient
from fswatch_supervisor.errors import BadRequest
from tests.harness import SupervisorProc, count_inotify_watches, events_of

FILES = ("src/a.py", "src/b.txt", "src/.env", "src/gen/c.py", "build/out.o", "build/keep/k.o",
         "node_modules/pkg/i.js", "lib/node_modules/x/j.js", ".cache/z", "README.md")


def populate(root: Path, files: tuple[str, ...] = FILES) -> set[str]:
    made = set()
    for rel in files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rel)
        made.add(str(path))
    return made


def touched_files(rpc: SupervisorClient, wid: str) -> set[str]:
    """Paths of the file events a watcher received."""
    return {e["path"] for e in events_of(rpc, wid) if e["kind"] == "file"}


def watch(rpc: SupervisorClient, **args: Any) -> str:
    return str(rpc.call("create_watcher", coalesce_ms=0, **args)["id"])


def test_rules_select_by_path_glob_and_hidden_with_last_match_winning(supervisor: SupervisorProc,
                                                                      tree: Path) -> None:
    t = str(tree)
    rule_sets: dict[str, dict[str, Any]] = {
        "default": {"path": t},
        "globs": {"rules": [["include-path", t], ["exclude-hidden"], ["exclude-glob", "**/*.txt"],
                            ["exclude-glob", "**/node_modules"], ["exclude-path", f"{t}/build"],
                            ["include-glob", "build/keep/**"], ["include-glob", "**/.env"]]},
        "anchored": {"rules": [["include-path", t], ["exclude-glob", "node_modules"],
                               ["exclude-glob", "src/**/*.py"]]},
        "absolute": {"rules": [["include-path", t], ["exclude-glob", f"{t}/src/*"],
                               ["include-glob", f"{t}/src/*.py"], ["include-hidden"]]},
        "only-python": {"rules": [["include-path", t], ["exclude-glob", "**"], ["include-glob", "**/*.py"]]},
    }
    with supervisor.client() as rpc:
        ids = {name: watch(rpc, **args) for name, args in rule_sets.items()}
        populate(tree)
        for wid in ids.values():
            rpc.call("sync", id=wid)
        got = {name: touched_files(rpc, wid) for name, wid in ids.items()}

    def paths(*rels: str) -> set[str]:
        return {f"{t}/{r}" for r in rels}

    assert got["default"] == paths("src/a.py", "src/b.txt", "src/gen/c.py", "build/out.o", "build/keep/k.o",
                                   "node_modules/pkg/i.js", "lib/node_modules/x/j.js", "README.md")
    # exclude-path build, then include-glob build/keep/** re-includes below it: the last match wins;
    # exclude-hidden, then include-glob **/.env: .env comes back, .cache stays out.
    assert got["globs"] == paths("src/a.py", "src/gen/c.py", "build/keep/k.o", "src/.env", "README.md")
    # relative globs are anchored at the include root: only ROOT/node_modules, not lib/node_modules.
    assert got["anchored"] == paths("src/b.txt", "src/.env", "build/out.o", "build/keep/k.o",
                                    "lib/node_modules/x/j.js", ".cache/z", "README.md")
    # src/* excludes src/gen with its subtree and src/b.txt, src/*.py re-includes a.py, and the last
    # rule, include-hidden, re-includes src/.env (it matches last).
    assert got["absolute"] == paths("src/a.py", "src/.env", "build/out.o", "build/keep/k.o", "node_modules/pkg/i.js",
                                    "lib/node_modules/x/j.js", ".cache/z", "README.md")
    assert got["only-python"] == paths("src/a.py", "src/gen/c.py")


def test_path_alone_means_include_path_and_exclude_hidden(supervisor: SupervisorProc, tree: Path) -> None:
    with supervisor.client() as rpc:
        described = rpc.call("create_watcher", path=str(tree) + "/")
        same = rpc.call("create_watcher", rules=[["include-path", str(tree)], ["exclude-hidden"]])
        assert described["rules"] == [["include-path", str(tree)], ["exclude-hidden"]] == same["rules"]
        assert described["path"] == str(tree)
        populate(tree)
        rpc.call("sync", id=described["id"])
        rpc.call("sync", id=same["id"])
        assert touched_files(rpc, described["id"]) == touched_files(rpc, same["id"])


def test_hidden_root_itself_is_watchable(supervisor: SupervisorProc, tree: Path) -> None:
    root = tree / ".config"
    root.mkdir()
    with supervisor.client() as rpc:
        wid = watch(rpc, path=str(root))
        populate(root, ("app/settings.toml", "app/.lock"))
        rpc.call("sync", id=wid)
        assert touched_files(rpc, wid) == {str(root / "app/settings.toml")}


@pytest.mark.parametrize(("rules", "says"), [
    ([["include-path", "/tmp"], ["exclude-glob", "a[b"]], "rules[1]: bad glob 'a[b': unbalanced '['"),
    ([["include-path", "/tmp"], ["exclude-glob", "build/"]], "ends with '/'"),
    ([["include-path", "/tmp"], ["exclude-glob", "a//b"]], "empty path component"),
    ([["include-path", "/tmp"], ["include-glob", "../x"]], "component '..' never matches"),
    ([["include-path", "/tmp"], ["exclude-glob", ""]], "empty pattern"),
    ([["include-path", "/tmp"], ["exclude-glob", "x\\"]], "unfinished escape"),
    ([["include-path", "/tmp"], ["exclude-path", "build"]], "needs an absolute path"),
    ([["include-path", "/tmp"], ["exclude-hidden", "x"]], "takes no argument"),
    ([["include-path", "/tmp"], ["exclude-regex", "x"]], "unknown rule 'exclude-regex'"),
    ([["include-path", "/tmp"], ["exclude-glob", 5]], "must be a string, got int"),
    ([["exclude-hidden"]], "at least one [\"include-path\""),
    ("include-path /tmp", "rules must be a list"),
])
def test_bad_rules_are_400_saying_what_is_wrong(supervisor: SupervisorProc, rules: object, says: str) -> None:
    with supervisor.client() as rpc:
        with pytest.raises(BadRequest) as caught:
            rpc.call("create_watcher", rules=rules)
        assert says in caught.value.detail
        assert rpc.call("list_watchers")["items"] == []


def test_explain_names_the_deciding_rule_and_the_os_watch(supervisor: SupervisorProc, tree: Path) -> None:
    populate(tree)
    t = str(tree)
    rules = [["include-path", t], ["exclude-hidden"], ["exclude-glob", "**/node_modules"],
             ["include-glob", "src/.env"]]
    with supervisor.client() as rpc:
        wid = watch(rpc, rules=rules)

        def explain(rel: str) -> tuple[bool, Any, bool]:
            answer = rpc.call("explain", id=wid, path=f"{t}/{rel}" if rel else t)
            assert answer["path"] == (f"{t}/{rel}" if rel else t)
            return answer["selected"], answer["rule"], answer["os_watched"]

        assert explain("") == (True, rules[0], True)
        assert explain("src/a.py") == (True, rules[0], True)
        assert explain("src/gen") == (True, rules[0], True)
        assert explain("src/.env") == (True, rules[3], True)
        assert explain(".cache") == (False, rules[1], False)
        assert explain(".cache/z") == (False, rules[1], False)
        assert explain("node_modules") == (False, rules[2], False)
        assert explain("lib/node_modules/x/j.js") == (False, rules[2], False)
        assert explain("not/yet/there.py") == (True, rules[0], False)
        outside = rpc.call("explain", id=wid, path=str(tree.parent / "elsewhere"))
        assert (outside["selected"], outside["rule"]) == (False, None)
        with pytest.raises(BadRequest):
            rpc.call("explain", id=wid, path="relative/path")
        # A later include that could select something inside an excluded directory keeps it
        # watched (needs_dir is conservative); OS watches are shared, so explain shows it for all.
        watch(rpc, rules=[*rules[:3], ["include-glob", "**/.env"]])
        assert explain(".cache") == (False, rules[1], True)
        assert explain("node_modules") == (False, rules[2], True)


def test_single_file_watcher_reports_only_that_file_across_atomic_saves(supervisor: SupervisorProc,
                                                                        tree: Path) -> None:
    target = tree / "settings.json"
    target.write_text("{}")
    (tree / "sub").mkdir()
    with supervisor.client() as rpc:
        # the default window: one save is one event even when the OS splits it into several raw ones
        wid = rpc.call("create_watcher", path=str(target))["id"]
        assert count_inotify_watches(supervisor.pid) == 1  # the parent, not listed, no subdirectories
        (tree / "sibling.txt").write_text("not mine")
        (tree / "sub" / "deeper.txt").write_text("not mine")
        with open(target, "a") as handle:
            handle.write(" ")
        rpc.call("sync", id=wid)
        # VS Code style: write a temp file next to it, rename over it.
        (tree / ".settings.json.tmp").write_text('{"a": 1}')
        os.rename(tree / ".settings.json.tmp", target)
        rpc.call("sync", id=wid)
        # the same with a visible temp name: still only the target is reported
        (tree / "settings.json.swp").write_text('{"a": 2}')
        os.rename(tree / "settings.json.swp", target)
        rpc.call("sync", id=wid)
        target.unlink()
        rpc.call("sync", id=wid)
        target.write_text("back")
        rpc.call("sync", id=wid)
        seen = [(e["action"], e["path"], e["kind"]) for e in events_of(rpc, wid)]
        assert count_inotify_watches(supervisor.pid) == 1
    p = str(target)
    assert seen == [("updated", p, "file"), ("updated", p, "file"), ("updated", p, "file"),
                    ("deleted", p, "file"), ("created", p, "file")]
