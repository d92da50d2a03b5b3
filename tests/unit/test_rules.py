"""Watch rules: selection, explanation, OS-watch pruning and validation messages."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fswatch_supervisor.errors import BadRequest
from fswatch_supervisor.rules import RuleError, RuleSet, _Glob


def rs(*rules: list[str]) -> RuleSet:
    return RuleSet.parse([list(r) for r in rules])


class TestForPath:
    """``path`` alone means include-path plus exclude-hidden."""

    def test_json_form_and_roots(self) -> None:
        rules = RuleSet.for_path("/r/")
        assert rules.to_json() == [["include-path", "/r"], ["exclude-hidden"]]
        assert rules.roots == ("/r",)

    def test_selects_root_and_everything_visible_below(self) -> None:
        rules = RuleSet.for_path("/r")
        assert rules.selects("/r")
        assert rules.selects("/r/src/a.py")

    def test_hidden_components_below_root_are_excluded(self) -> None:
        rules = RuleSet.for_path("/r")
        assert not rules.selects("/r/.git")
        assert not rules.selects("/r/.git/objects/ab")
        assert not rules.selects("/r/src/.cache/x")
        assert rules.selects("/r/src/a.b")

    def test_hidden_root_itself_is_watchable(self) -> None:
        rules = RuleSet.for_path("/home/u/.config")
        assert rules.selects("/home/u/.config/app/settings.json")
        assert not rules.selects("/home/u/.config/app/.lock")

    def test_relative_path_is_rejected(self) -> None:
        with pytest.raises(RuleError, match="absolute"):
            RuleSet.for_path("src")


class TestRoots:
    """The include-path roots bound the watch."""

    def test_outside_every_root_is_never_selected(self) -> None:
        rules = rs(["include-path", "/r"], ["include-glob", "/**"])
        assert not rules.selects("/other/a.py")
        assert rules.explain("/other/a.py") == (False, None)

    def test_sibling_with_common_prefix_is_outside(self) -> None:
        rules = rs(["include-path", "/r/x"])
        assert rules.selects("/r/x/a")
        assert not rules.selects("/r/xy")

    def test_relative_glob_uses_deepest_root(self) -> None:
        rules = rs(["include-path", "/r"], ["include-path", "/r/sub"], ["exclude-glob", "a"])
        assert not rules.selects("/r/a")
        assert not rules.selects("/r/sub/a")  # relative to /r/sub, the deepest root
        assert rules.selects("/r/sub/b/a")

    def test_multiple_roots_in_order_without_duplicates(self) -> None:
        rules = rs(["include-path", "/b"], ["include-path", "/a"], ["include-path", "/b/"])
        assert rules.roots == ("/b", "/a")

    def test_root_slash(self) -> None:
        rules = rs(["include-path", "/"], ["exclude-glob", "proc"])
        assert rules.selects("/home/x")
        assert not rules.selects("/proc/1/stat")


class TestPathRules:
    def test_exclude_path_covers_subtree(self) -> None:
        rules = rs(["include-path", "/r"], ["exclude-path", "/r/build"])
        assert not rules.selects("/r/build")
        assert not rules.selects("/r/build/out/a.o")
        assert rules.selects("/r/buildx")

    def test_include_path_after_exclude_reincludes(self) -> None:
        rules = rs(["include-path", "/r"], ["exclude-path", "/r/build"], ["include-path", "/r/build/keep"])
        assert rules.selects("/r/build/keep/a")
        assert not rules.selects("/r/build/other")

    def test_paths_are_normalised(self) -> None:
        rules = rs(["include-path", "/r/./a/../b/"], ["exclude-path", "//r/b/x/"])
        assert rules.to_json() == [["include-path", "/r/b"], ["exclude-path", "/r/b/x"]]
        assert rules.selects("/r/b/y/")
        assert not rules.selects("/r/b/./x/z")


class TestGlobs:
    @pytest.mark.parametrize(
        ("pattern", "path", "hit"),
        [
            ("*.py", "/r/a.py", True),
            ("*.py", "/r/src/a.py", False),  # '*' stays within one component
            ("**/*.py", "/r/src/deep/a.py", True),
            ("**/*.py", "/r/a.py", True),  # '**' may match zero components
            ("src/**/*.py", "/r/src/a.py", True),
            ("src/**", "/r/src", False),  # a trailing '**' means inside, not the directory itself
            ("src/**", "/r/src/a/b", True),
            ("?.txt", "/r/a.txt", True),
            ("?.txt", "/r/ab.txt", False),
            ("[ab].c", "/r/b.c", True),
            ("[!ab].c", "/r/b.c", False),
            ("[[:digit:]]*", "/r/1x", True),
            ("*", "/r/.hidden", True),  # globs match dot names; hidden rules handle those
            ("a\\*", "/r/a*", True),
            ("a\\*", "/r/ab", False),
            ("/r/src/*.py", "/r/src/a.py", True),  # absolute pattern, absolute path
            ("/r/*.py", "/r/src/a.py", False),
        ],
    )
    def test_pattern_syntax(self, pattern: str, path: str, hit: bool) -> None:
        rules = rs(["include-path", "/r"], ["exclude-glob", pattern])
        assert rules.selects(path) is not hit

    def test_exclude_glob_prunes_subtree_at_any_depth(self) -> None:
        rules = rs(["include-path", "/r"], ["exclude-glob", "**/node_modules"])
        assert not rules.selects("/r/node_modules/x/index.js")
        assert not rules.selects("/r/web/node_modules/x/index.js")
        assert rules.selects("/r/web/node_modulesx/index.js")
        assert not rules.needs_dir("/r/web/node_modules")

    def test_relative_name_matches_only_at_top(self) -> None:
        rules = rs(["include-path", "/r"], ["exclude-glob", "node_modules"])
        assert not rules.selects("/r/node_modules/a")
        assert rules.selects("/r/web/node_modules/a")

    def test_include_glob_after_catch_all_exclude(self) -> None:
        rules = rs(["include-path", "/r"], ["exclude-glob", "**"], ["include-glob", "**/*.py"])
        assert rules.selects("/r/pkg/a.py")
        assert not rules.selects("/r/pkg")
        assert not rules.selects("/r/pkg/a.txt")
        assert rules.needs_dir("/r/pkg")  # a .py file inside must still be seen

    def test_last_matching_rule_wins(self) -> None:
        rules = rs(
            ["include-path", "/r"], ["exclude-glob", "**/*.log"], ["include-glob", "keep.log"],
            ["exclude-path", "/r/keep.log"],
        )
        assert not rules.selects("/r/keep.log")
        assert rules.explain("/r/keep.log") == (False, ["exclude-path", "/r/keep.log"])

    def test_include_glob_does_not_reach_outside_roots(self) -> None:
        rules = rs(["include-path", "/r/a"], ["include-glob", "/r/**"])
        assert not rules.selects("/r/b/x")


class TestHidden:
    def test_include_hidden_overrides_earlier_exclude(self) -> None:
        rules = rs(["include-path", "/r"], ["exclude-hidden"], ["include-hidden"])
        assert rules.selects("/r/.env")
        assert rules.explain("/r/.env") == (True, ["include-hidden"])

    def test_include_hidden_beats_glob_exclude_for_hidden_only(self) -> None:
        rules = rs(["include-path", "/r"], ["exclude-glob", "**/*.log"], ["include-hidden"])
        assert rules.selects("/r/.x.log")
        assert not rules.selects("/r/x.log")


class TestExplain:
    def test_reports_deciding_rule(self) -> None:
        rules = RuleSet.for_path("/r")
        assert rules.explain("/r/a") == (True, ["include-path", "/r"])
        assert rules.explain("/r/.git/x") == (False, ["exclude-hidden"])

    def test_relative_path_is_an_error(self) -> None:
        with pytest.raises(RuleError, match="absolute"):
            RuleSet.for_path("/r").explain("a/b")


class TestNeedsDir:
    def test_hidden_dir_is_pruned(self) -> None:
        rules = RuleSet.for_path("/r")
        assert not rules.needs_dir("/r/.git")
        assert not rules.needs_dir("/r/.git/objects")
        assert rules.needs_dir("/r/src")
        assert rules.needs_dir("/r")

    def test_later_include_keeps_excluded_dir_watched(self) -> None:
        rules = rs(["include-path", "/r"], ["exclude-path", "/r/b"], ["include-glob", "b/keep/*"])
        assert rules.needs_dir("/r/b")
        assert rules.needs_dir("/r/b/keep")
        assert not rules.needs_dir("/r/b/other")

    def test_nested_root_under_excluded_dir(self) -> None:
        rules = rs(["include-path", "/r"], ["exclude-hidden"], ["include-path", "/r/.cfg/app"])
        assert rules.needs_dir("/r/.cfg")
        assert rules.selects("/r/.cfg/app/x")
        assert not rules.selects("/r/.cfg/other")

    def test_single_file_root(self) -> None:
        rules = RuleSet.for_path("/r/notes.txt")
        assert rules.selects("/r/notes.txt")
        assert not rules.selects("/r/other.txt")
        assert rules.needs_dir("/r")  # the daemon watches the parent to see atomic saves
        assert not rules.needs_dir("/r/sub")

    def test_outside_dirs_are_not_needed(self) -> None:
        assert not RuleSet.for_path("/r").needs_dir("/s")


class TestValidation:
    @pytest.mark.parametrize(
        ("raw", "message"),
        [
            ({"include-path": "/r"}, "rules must be a list of rules, got dict"),
            ([], "at least one"),
            ([["exclude-hidden"]], "at least one"),
            (["include-path"], r"rules\[0\] must be a list"),
            ([[]], r"rules\[0\] is empty"),
            ([[3]], "rule name must be a string, got int"),
            ([["include-paths", "/r"]], "unknown rule 'include-paths'"),
            ([["include-path"]], "takes exactly 1 argument, got 0"),
            ([["include-path", "/r", "/s"]], "takes exactly 1 argument, got 2"),
            ([["include-path", "/r"], ["exclude-hidden", "x"]], "takes no argument, got 1"),
            ([["include-path", None]], "must be a string, got null"),
            ([["include-path", "r"]], "needs an absolute path, got 'r'"),
            ([["include-path", "/r"], ["exclude-path", "build"]], r"rules\[1\]: 'exclude-path' needs an absolute"),
            ([["include-path", "/r\0"]], "NUL"),
            ([["include-path", "/r"], ["exclude-glob", "a[b"]], "unbalanced '\\[' at offset 1"),
            ([["include-path", "/r"], ["exclude-glob", "a[/]"]], "unbalanced"),
            ([["include-path", "/r"], ["exclude-glob", "[]"]], "unbalanced"),
            ([["include-path", "/r"], ["exclude-glob", ""]], "empty pattern"),
            ([["include-path", "/r"], ["exclude-glob", "a//b"]], "empty path component"),
            ([["include-path", "/r"], ["exclude-glob", "build/"]], "write 'build'"),
            ([["include-path", "/r"], ["exclude-glob", "../x"]], "never matches"),
            ([["include-path", "/r"], ["exclude-glob", "a\\"]], "unfinished escape"),
            ([["include-path", "/r"], ["include-glob", 7]], "argument of 'include-glob' must be a string"),
        ],
    )
    def test_message_says_what_is_wrong(self, raw: object, message: str) -> None:
        with pytest.raises(RuleError, match=message):
            RuleSet.parse(raw)

    def test_rule_error_is_a_400_and_a_value_error(self) -> None:
        with pytest.raises(RuleError) as info:
            RuleSet.parse("nope")
        assert isinstance(info.value, ValueError)
        assert isinstance(info.value, BadRequest)
        assert info.value.to_dict()["status"] == 400

    @pytest.mark.parametrize("pattern", ["[]a]", "[!]]x", "[[:alpha:]_]", "a]b", "\\[x"])
    def test_valid_brackets_are_accepted(self, pattern: str) -> None:
        rs(["include-path", "/r"], ["exclude-glob", pattern])

    def test_equal_rule_sets_compare_and_hash_equal(self) -> None:
        a, b = RuleSet.for_path("/r/"), RuleSet.for_path("/r")
        assert a == b
        assert hash(a) == hash(b)
        assert a != RuleSet.for_path("/s")


# -- properties ---------------------------------------------------------------------------------

NAMES = ["a", "b", ".h", "n1"]
COMPONENTS = ["a", "b", ".h", "*", "?", "**", "[ab]", "n*", "*1", "[!a]"]
TREE = ["/".join(p) for depth in (1, 2, 3) for p in itertools.product(NAMES, repeat=depth)]

patterns = st.lists(st.sampled_from(COMPONENTS), min_size=1, max_size=3).map("/".join)
rule = st.one_of(
    st.sampled_from([["exclude-hidden"], ["include-hidden"]]),
    st.tuples(st.sampled_from(["include-path", "exclude-path"]), st.sampled_from(TREE)).map(
        lambda t: [t[0], f"/r/{t[1]}"]
    ),
    st.tuples(st.sampled_from(["include-glob", "exclude-glob"]), patterns, st.booleans()).map(
        lambda t: [t[0], f"/r/{t[1]}" if t[2] else t[1]]
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(rule, max_size=5))
def test_needs_dir_never_prunes_a_selected_path(rules: list[list[str]]) -> None:
    ruleset = RuleSet.parse([["include-path", "/r"], *rules])
    for d in ["", *TREE]:
        directory = f"/r/{d}".rstrip("/")
        below = [f"/r/{p}" for p in TREE if (p + "/").startswith(d + "/") or not d]
        if any(ruleset.selects(p) for p in [directory, *below]):
            assert ruleset.needs_dir(directory), (directory, rules)


@settings(max_examples=300, deadline=None)
@example("**/*1", ["1a"])
@example("**/a", ["ab", "a.h"])
@example("a/b", ["a"])
@example("**/n*", ["x1", "n1", "b"])
@given(patterns, st.lists(st.sampled_from(NAMES + ["x1", "ab", "1a", "a.h"]), min_size=1, max_size=4))
def test_fast_paths_agree_with_the_automaton(pattern: str, comps: list[str]) -> None:
    glob = _Glob(pattern)
    assert glob.matches(comps) == glob._run(comps)[0]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["/", "/r", "/r/a", "/r/.h", "/r/"]),
       st.lists(st.sampled_from(NAMES + [".", "..", "", "r", "a."]), max_size=4))
def test_default_rule_set_shortcut_agrees_with_the_rule_walk(root: str, comps: list[str]) -> None:
    path = "/" + "/".join(comps)
    # An include-glob that matches nothing keeps the selection and takes the general rule walk.
    general = RuleSet.parse([["include-path", root], ["exclude-hidden"], ["include-glob", "/nowhere/x"]])
    assert RuleSet.for_path(root).selects(path) == general.selects(path), path
    assert RuleSet.for_path(root).needs_dir(path) == general.needs_dir(path), path
