"""Watch rules: which paths a watcher selects, and which directories the daemon must OS-watch.

A rule set is a list applied in order; for a path, the last rule that *matches* it decides (include
or exclude). Every rule matches a whole subtree:

- ``include-path P`` / ``exclude-path P``: P and everything under it.
- ``include-hidden`` / ``exclude-hidden``: any path with a component starting with ``.`` below its
  include root (the root's own name never counts, so watching ``~/.config`` works).
- ``include-glob G`` / ``exclude-glob G``: any path that G matches, or that lies under a directory G
  matches (so ``**/node_modules`` prunes the whole tree). A relative G is matched against the path
  relative to its include root (the deepest include-path containing it); an absolute G against the
  absolute path. ``*`` ``?`` ``[...]`` stay within one component and also match names starting with
  ``.``; ``**`` spans components (zero or more; a trailing ``**`` means "anything inside").

A path outside every include-path is never selected: the roots bound the watch.

Matching runs per event per candidate watcher, so patterns are split into components once and matched
with fast paths (a literal name under ``**`` is a C-level ``in`` test); the same component automaton
answers :meth:`RuleSet.needs_dir`, which keeps the two consistent.
"""

from __future__ import annotations

import enum
import os
import re
from typing import Final

from wcmatch import fnmatch

from fswatch_supervisor.errors import BadRequest

Rule = list[str]

_PATH_RULES: Final = ("include-path", "exclude-path")
_GLOB_RULES: Final = ("include-glob", "exclude-glob")
_HIDDEN_RULES: Final = ("include-hidden", "exclude-hidden")
_ALL_NAMES: Final = (*_PATH_RULES, *_GLOB_RULES, *_HIDDEN_RULES)
_MAGIC: Final = frozenset("*?[\\")
_FNFLAGS: Final = fnmatch.DOTMATCH | fnmatch.CASE | fnmatch.FORCEUNIX



class Coverage(enum.IntEnum):
    """How a rule relates to a directory's subtree (the directory and everything below it)."""

    NONE = 0
    SOME = 1
    ALL = 2


class RuleError(BadRequest, ValueError):
    """A rule set is malformed; the message says exactly what is wrong (it becomes a 400)."""


def _describe(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _check_component(comp: str) -> str | None:
    """Why one pattern component is not a valid glob, or None."""
    i, n = 0, len(comp)
    while i < n:
        ch = comp[i]
        if ch == "\\":
            if i + 1 >= n:
                return "ends with an unfinished escape '\\'"
            i += 2
            continue
        if ch == "[":
            j = i + 1
            if j < n and comp[j] in "!^":
                j += 1
            if j < n and comp[j] == "]":
                j += 1  # a leading ']' is a member, not the end
            while j < n and comp[j] != "]":
                if comp[j] == "\\":
                    j += 1
                elif comp.startswith("[:", j) and comp.find(":]", j + 2) != -1:
                    j = comp.find(":]", j + 2) + 1
                j += 1
            if j >= n:
                return f"unbalanced '[' at offset {i} of component {comp!r} (a '[...]' class cannot span '/')"
            i = j + 1
            continue
        i += 1
    return None


class _Glob:
    """One pattern, split into components, matched against a prefix of a path's components."""

    __slots__ = ("absolute", "parts", "_tail_re", "_needle", "_prefix", "_anywhere")

    def __init__(self, pattern: str) -> None:
        self.absolute = pattern.startswith("/")
        comps = pattern.split("/")[1:] if self.absolute else pattern.split("/")
        if comps and comps[-1] == "**":
            comps[-1] = "*"  # "a/**" = anything inside a; under subtree matching that is "a/*"
        self.parts: list[str | re.Pattern[str] | None] = [
            None if c == "**" else (c if not (_MAGIC & set(c)) else _component_regex(c))
            for c in comps
        ]
        stars = sum(p is None for p in self.parts)
        self._tail_re: re.Pattern[str] | None = None
        # Fast paths on the path wrapped in slashes ("/a/b/"): one C-level substring test.
        self._needle: str | None = None
        self._prefix: str | None = None
        self._anywhere = stars == 1 and len(comps) == 2 and self.parts[0] is None
        if stars == 0 and all(isinstance(p, str) for p in self.parts):
            self._prefix = "/" + "/".join(comps) + "/"  # "build/out": the wrapped path starts so
        elif self._anywhere:
            tail = comps[1]
            if isinstance(self.parts[1], str):
                self._needle = f"/{tail}/"  # "**/node_modules"
            elif tail.startswith("*") and not (_MAGIC & set(tail[1:])):
                self._needle = f"{tail[1:]}/"  # "**/*.pyc": some component ends with ".pyc"
            else:
                self._tail_re = _component_regex(tail)

    @staticmethod
    def _hit(part: str | re.Pattern[str] | None, comp: str) -> bool:
        return comp == part if isinstance(part, str) else part is not None and part.match(comp) is not None

    def matches(self, comps: list[str]) -> bool:
        """Does the pattern match the path, or one of its ancestors (a non-empty prefix of ``comps``)?"""
        return bool(comps) and self.matches_wrapped("/" + "/".join(comps) + "/")

    def matches_wrapped(self, wrapped: str) -> bool:
        """:meth:`matches` for the path's components joined and wrapped in slashes: ``"/a/b/"``."""
        if self._needle is not None:
            return self._needle in wrapped
        if self._prefix is not None:
            return wrapped.startswith(self._prefix)
        if len(wrapped) <= 2:
            return False  # no components: a pattern never matches the include root itself
        comps = wrapped[1:-1].split("/")
        if self._tail_re is not None:
            return any(map(self._tail_re.match, comps))
        return self._run(comps)[0]

    def coverage(self, comps: list[str]) -> Coverage:
        """For the subtree at ``comps``: does the pattern match all of it, maybe some, or none?"""
        if self.matches(comps):
            return Coverage.ALL
        if self._anywhere:
            return Coverage.SOME  # the leading "**" can still absorb anything below
        return Coverage.SOME if self._run(comps)[1] else Coverage.NONE

    def _closure(self, states: set[int]) -> set[int]:
        todo = list(states)
        while todo:
            i = todo.pop()
            if i < len(self.parts) and self.parts[i] is None and i + 1 not in states:
                states.add(i + 1)
                todo.append(i + 1)
        return states

    def _run(self, comps: list[str]) -> tuple[bool, bool]:
        """Simulate the component automaton: (accepted after some non-empty prefix, still alive)."""
        end = len(self.parts)
        states = self._closure({0})
        for comp in comps:
            nxt: set[int] = set()
            for i in states:
                if i == end:
                    continue
                part = self.parts[i]
                if part is None:
                    nxt.add(i)
                elif self._hit(part, comp):
                    nxt.add(i + 1)
            states = self._closure(nxt)
            if end in states:
                return True, True
            if not states:
                return False, False
        return False, bool(states)


def _component_regex(comp: str) -> re.Pattern[str]:
    """The wcmatch translation of one component, as a plain ``re`` pattern (no wrapper per call)."""
    (regex,), _ = fnmatch.translate(comp, flags=_FNFLAGS)
    return re.compile(regex)


def _validate_glob(where: str, pattern: str) -> None:
    def bad(why: str) -> RuleError:
        return RuleError(f"{where}: bad glob {pattern!r}: {why}")

    if "\0" in pattern:
        raise bad("contains a NUL character")
    body = pattern[1:] if pattern.startswith("/") else pattern
    if not body:
        raise bad("empty pattern")
    if body.endswith("/"):
        fixed = pattern.rstrip("/")
        raise bad(f"ends with '/'; patterns match paths without a trailing slash, write {fixed!r}")
    for comp in body.split("/"):
        if comp == "":
            raise bad("empty path component ('//')")
        if comp in (".", ".."):
            raise bad(f"component {comp!r} never matches a normalised path")
        why = _check_component(comp)
        if why:
            raise bad(why)


def _validate_path(where: str, name: str, value: str) -> str:
    if "\0" in value:
        raise RuleError(f"{where}: {name!r} path contains a NUL character")
    if not value.startswith("/"):
        raise RuleError(f"{where}: {name!r} needs an absolute path, got {value!r}")
    return os.path.normpath(value).replace("//", "/", 1)


def _normalise_rule(index: int, raw: object) -> Rule:
    where = f"rules[{index}]"
    if not isinstance(raw, list):
        raise RuleError(f"{where} must be a list such as [\"include-path\", \"/abs\"], got {_describe(raw)}")
    if not raw:
        raise RuleError(f"{where} is empty; a rule starts with its name, e.g. \"exclude-hidden\"")
    name, args = raw[0], raw[1:]
    if not isinstance(name, str):
        raise RuleError(f"{where}: the rule name must be a string, got {_describe(name)}")
    if name not in _ALL_NAMES:
        raise RuleError(f"{where}: unknown rule {name!r}; expected one of {', '.join(_ALL_NAMES)}")
    want = 0 if name in _HIDDEN_RULES else 1
    if len(args) != want:
        what = "no argument" if want == 0 else "exactly 1 argument"
        raise RuleError(f"{where}: {name!r} takes {what}, got {len(args)}")
    if want == 0:
        return [name]
    arg = args[0]
    if not isinstance(arg, str):
        raise RuleError(f"{where}: the argument of {name!r} must be a string, got {_describe(arg)}")
    if name in _PATH_RULES:
        return [name, _validate_path(where, name, arg)]
    _validate_glob(where, arg)
    return [name, arg]


def _within(path: str, prefix: str) -> bool:
    """Is ``path`` equal to or under ``prefix`` (with ``prefix + '/'`` precomputed)?"""
    return path.startswith(prefix) or path == prefix[:-1]


class RuleSet:
    """A validated, precompiled rule set. Build with :meth:`parse` or :meth:`for_path`."""

    __slots__ = ("roots", "_rules", "_compiled", "_root_prefixes", "_default_prefix", "_hash")

    def __init__(self, rules: list[Rule]) -> None:
        self._rules = rules
        roots = dict.fromkeys(r[1] for r in rules if r[0] == "include-path")
        if not roots:
            raise RuleError("rules need at least one [\"include-path\", ABSOLUTE_PATH] rule")
        self.roots: tuple[str, ...] = tuple(roots)
        # Deepest root first, so the first root containing a path is its include root.
        self._root_prefixes = sorted(((r.rstrip("/") + "/", r) for r in self.roots), key=lambda p: -len(p[0]))
        # (is an include, matcher): a "P/" prefix for path rules, a _Glob, or None for hidden rules.
        self._compiled: list[tuple[bool, str | _Glob | None]] = []
        for rule in rules:
            include = rule[0].startswith("include-")
            if rule[0] in _PATH_RULES:
                self._compiled.append((include, rule[1].rstrip("/") + "/"))
            elif rule[0] in _GLOB_RULES:
                self._compiled.append((include, _Glob(rule[1])))
            else:
                self._compiled.append((include, None))
        # Routing groups watchers by equal rule sets, once per change: the hash is asked often.
        self._hash = hash(tuple(tuple(r) for r in rules))
        # ``[include-path R, exclude-hidden]`` is what every watcher made with ``path`` alone has:
        # ``selects`` answers it with two string tests instead of the general rule walk.
        default = len(rules) == 2 and rules[0][0] == "include-path" and rules[1][0] == "exclude-hidden"
        self._default_prefix = self._root_prefixes[0][0] if default else None

    @classmethod
    def parse(cls, raw: object) -> RuleSet:
        """Validate the JSON form; raise :class:`RuleError` saying exactly what is wrong."""
        if not isinstance(raw, list):
            raise RuleError(f"rules must be a list of rules, got {_describe(raw)}")
        return cls([_normalise_rule(i, r) for i, r in enumerate(raw)])

    @classmethod
    def for_path(cls, path: str) -> RuleSet:
        """What a watcher created with ``path`` alone means."""
        return cls.parse([["include-path", path], ["exclude-hidden"]])

    def to_json(self) -> list[Rule]:
        return [list(r) for r in self._rules]

    def __eq__(self, other: object) -> bool:
        return other is self or isinstance(other, RuleSet) and self._rules == other._rules

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"RuleSet({self._rules!r})"

    def _root_of(self, path: str) -> str | None:
        for prefix, root in self._root_prefixes:
            if path.startswith(prefix) or path == root:
                return root
        return None

    def _decide(self, path: str) -> int | None:
        """Index of the deciding rule, or None when the path is outside every root."""
        root = self._root_of(path)
        if root is None:
            return None
        # "/a/b/" forms: hidden and most glob tests become substring tests on these.
        rel = path[len(root.rstrip("/")) :] + "/"
        absolute = path + "/" if path != "/" else "/"
        compiled = self._compiled
        for index in range(len(compiled) - 1, -1, -1):
            data = compiled[index][1]
            if data is None:
                hit = "/." in rel
            elif isinstance(data, str):
                hit = path.startswith(data) or path == data[:-1]
            else:
                hit = data.matches_wrapped(absolute if data.absolute else rel)
            if hit:
                return index
        return None

    def selects(self, path: str) -> bool:
        """Is this path (file or directory) selected? ``path`` must be absolute."""
        path = _normalise(path)
        prefix = self._default_prefix
        if prefix is not None:
            return (path.startswith(prefix) and "/." not in path[len(prefix) - 1:]) or path == prefix[:-1]
        index = self._decide(path)
        return index is not None and self._compiled[index][0]

    def explain(self, path: str) -> tuple[bool, Rule | None]:
        """Whether the path is selected, and the rule that decided it (None outside every root)."""
        if not isinstance(path, str) or not path.startswith("/"):
            raise RuleError(f"path must be absolute, got {path!r}")
        index = self._decide(_normalise(path))
        if index is None:
            return False, None
        return self._compiled[index][0], list(self._rules[index])

    def needs_dir(self, dir_path: str) -> bool:
        """Must this directory be OS-watched and crawled: could it, or anything below it, be selected?

        Conservative: False only when no rule order can select anything in the subtree. A directory
        that contains a root (e.g. the parent of a single-file root) is always needed.
        """
        d = _normalise(dir_path)
        d_prefix = d.rstrip("/") + "/"
        if self._default_prefix is not None:  # [include-path R, exclude-hidden]: R's ancestors, or selected
            return self._default_prefix.startswith(d_prefix) or self.selects(d)
        if any(r == d or r.startswith(d_prefix) for r in self.roots):
            return True
        root = self._root_of(d)
        if root is None:
            return False
        rel = _relative(d, root)
        absolute = d.split("/")[1:]
        for include, data in reversed(self._compiled):
            cover = _coverage(data, d, d_prefix, rel, absolute)
            if cover == Coverage.ALL:
                return include
            if cover == Coverage.SOME and include:
                return True
        return False


def _coverage(data: str | _Glob | None, d: str, d_prefix: str, rel: list[str], absolute: list[str]) -> Coverage:
    """How one compiled rule covers the subtree at directory ``d``."""
    if data is None:
        return Coverage.ALL if any(c[:1] == "." for c in rel) else Coverage.SOME
    if isinstance(data, str):
        if _within(d, data):
            return Coverage.ALL
        return Coverage.SOME if data.startswith(d_prefix) else Coverage.NONE
    return data.coverage(absolute if data.absolute else rel)


def _normalise(path: str) -> str:
    # The mirror hands us normalised paths; only pay for normpath when something looks off.
    if "//" in path or "/./" in path or "/../" in path or (path.endswith(("/", "/.", "/..")) and path != "/"):
        return os.path.normpath(path).replace("//", "/", 1)
    return path


def _relative(path: str, root: str) -> list[str]:
    if path == root:
        return []
    return path[len(root.rstrip("/")) + 1 :].split("/")
