"""msgspec structs: they validate request bodies and query strings, and generate the OpenAPI schemas.

Bodies are strict (JSON types are not coerced: ``"50"`` is not an integer) and closed
(``forbid_unknown_fields``: unknown keys are a 400). Query structs are converted leniently, since
every query value arrives as a string (``operations.parse_query``), and closed too. Response structs
exist for the OpenAPI document; responses themselves are the supervisor's maps, passed through
unchanged.

A rule is an ``array_like`` struct tagged by its first element (``["include-path", "/abs"]``), so
the rule arrays of the contract decode, and are documented, as one union of fixed shapes.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType, field

EVENT_ID_PATTERN = r"^[0-9]{20}$"
CURSOR_ID_PATTERN = r"^[0-9]{1,20}$"
TAG_PATTERN = r"^[^=]+=.*$"
WATCHER_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
RFC3339_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"

EventId = Annotated[str, Meta(pattern=EVENT_ID_PATTERN, examples=["00000000000000000042"])]
AbsPath = Annotated[str, Meta(min_length=1, max_length=4096, examples=["/home/me/project"])]
Glob = Annotated[str, Meta(min_length=1, max_length=4096, examples=["**/*.pyc"])]
Cursor = Annotated[str, Meta(max_length=1024, description="The `next` of the previous page.")]
Kind = Literal["file", "dir", "symlink", "other"]


# ---- rules ----

class _Rule(Struct, array_like=True, forbid_unknown_fields=True):
    def as_list(self) -> list[Any]:
        encoded: list[Any] = msgspec.to_builtins(self)
        return encoded


class IncludePath(_Rule, tag="include-path"):
    path: AbsPath


class ExcludePath(_Rule, tag="exclude-path"):
    path: AbsPath


class IncludeGlob(_Rule, tag="include-glob"):
    pattern: Glob


class ExcludeGlob(_Rule, tag="exclude-glob"):
    pattern: Glob


class ExcludeHidden(_Rule, tag="exclude-hidden"):
    pass


class IncludeHidden(_Rule, tag="include-hidden"):
    pass


Rule = IncludePath | ExcludePath | IncludeGlob | ExcludeGlob | ExcludeHidden | IncludeHidden


# ---- requests ----

class CreateWatcher(Struct, forbid_unknown_fields=True):
    """Exactly one of `path` and `rules`."""

    openapi_extra: ClassVar[dict[str, Any]] = {  # merged into its component schema (``openapi``)
        "oneOf": [{"required": ["path"]}, {"required": ["rules"]}],
        "examples": [{"path": "/home/me/project", "tags": {"team": "exo"}},
                     {"rules": [["include-path", "/home/me/project"], ["exclude-glob", "**/*.pyc"]]}],
    }

    path: Annotated[AbsPath, Meta(description="Directory or file to watch, recursively; "
                                              'means `[["include-path", path], ["exclude-hidden"]]`.')] \
        | UnsetType = UNSET
    rules: Annotated[list[Rule], Meta(min_length=1, max_length=1000,
                                      description="Rules applied in order; the last matching wins.")] \
        | UnsetType = UNSET
    tags: Annotated[dict[str, str], Meta(max_length=100, description="Arbitrary key/value pairs for later lookup.")] \
        = {}
    coalesce_ms: Annotated[int, Meta(ge=0, le=3_600_000,
                                     description="Window in which bursts of changes to one path merge.")] = 50
    ttl_s: Annotated[int, Meta(gt=0, le=2**31, description="Delete the watcher after this many idle seconds.")] \
        | None = None

    def __post_init__(self) -> None:
        if (self.path is UNSET) == (self.rules is UNSET):
            raise ValueError("give exactly one of 'path' and 'rules'")
        if self.rules is not UNSET and not any(isinstance(rule, IncludePath) for rule in self.rules):
            raise ValueError("a rule set needs at least one include-path rule")

    def texts(self) -> list[str]:
        """Every path and pattern in the request."""
        if self.rules is UNSET:
            return [self.path] if self.path is not UNSET else []
        return [part for rule in self.rules for part in rule.as_list()[1:]]

    def to_rpc(self) -> dict[str, Any]:
        args: dict[str, Any] = {"tags": self.tags, "coalesce_ms": self.coalesce_ms, "ttl_s": self.ttl_s}
        if self.path is not UNSET:
            args["path"] = self.path
        if self.rules is not UNSET:
            args["rules"] = [rule.as_list() for rule in self.rules]
        return args


class SyncBody(Struct, forbid_unknown_fields=True):
    timeout_s: Annotated[float, Meta(gt=0, le=30, description="Give up (504) when the cookie is not observed "
                                                              "in time.")] = 10.0


Ids = Annotated[list[str], Meta(description="Watcher ids; any of them (repeatable).")]
Tags = Annotated[list[Annotated[str, Meta(pattern=TAG_PATTERN)]],
                 Meta(description="`KEY=VALUE`; all of them (repeatable).")]


class ListWatchersQuery(Struct, forbid_unknown_fields=True):
    id: Ids = []
    tag: Tags = []
    limit: Annotated[int, Meta(ge=1, le=1000)] = 100
    cursor: Cursor | None = None


class DeleteWatchersQuery(Struct, forbid_unknown_fields=True):
    id: Ids = []
    tag: Tags = []


class EventsQuery(Struct, forbid_unknown_fields=True):
    after: Annotated[str, Meta(pattern=CURSOR_ID_PATTERN,
                               description="Only events with a greater id (exclusive cursor).")] | None = None
    since: Annotated[str, Meta(max_length=64, pattern=RFC3339_PATTERN, examples=["2026-11-24T05:50:00Z"],
                               description="Only events with time ≥ since (RFC 3339).")] | None = None
    limit: Annotated[int, Meta(ge=1, le=10_000)] = 1000
    wait: Annotated[float, Meta(ge=0, le=60, description="Long-poll: seconds to hold an empty answer.")] = 0.0
    stream: Annotated[bool, Meta(description="Answer with Server-Sent Events, as `Accept: text/event-stream`.")] \
        = False


class SnapshotQuery(Struct, forbid_unknown_fields=True):
    limit: Annotated[int, Meta(ge=1, le=10_000)] = 1000
    cursor: Cursor | None = None


class ExplainQuery(Struct, forbid_unknown_fields=True):
    path: AbsPath


# ---- responses (documentation only) ----

class Watcher(Struct):
    id: Annotated[str, Meta(examples=["w_3kq9ab"])]
    path: str
    rules: list[list[str]]
    tags: dict[str, str]
    coalesce_ms: int
    ttl_s: int | None
    created_at: Annotated[str, Meta(examples=["2026-11-24T05:50:00.123456Z"])]
    oldest_event_id: EventId | None
    latest_event_id: EventId | None


class WatcherList(Struct):
    items: list[Watcher]
    next: Annotated[str | None, Meta(description="Cursor of the next page; null on the last one.")]


class Deleted(Struct):
    deleted: list[str]


class Event(Struct):
    id: EventId
    action: Literal["created", "updated", "deleted", "moved", "overflow", "root-deleted", "watch-error",
                    "watcher-deleted"]
    path: str
    kind: Kind | None
    time: Annotated[str, Meta(examples=["2026-11-24T05:50:01.020304Z"])]
    from_: Annotated[str, Meta(description="Only for `moved`: the old path.")] | None \
        = field(default=None, name="from")
    rescan: Annotated[bool, Meta(description="Reported by a rescan, not by a live OS event.")] | None = None
    detail: Annotated[str, Meta(description="For `watch-error` and `overflow`.")] | None = None


class EventPage(Struct):
    items: list[Event]
    next_after: EventId | None
    oldest_event_id: EventId | None
    latest_event_id: EventId | None


class SnapshotItem(Struct):
    path: str
    kind: Kind | None
    size: int | None
    mtime: str | float | None


class SnapshotPage(Struct):
    items: list[SnapshotItem]
    next: str | None
    after: Annotated[str, Meta(pattern=EVENT_ID_PATTERN, description="Follow changes from this event id.")] | None


class Explanation(Struct):
    path: str
    selected: bool
    rule: list[str] | None
    os_watched: bool


class SyncResult(Struct):
    latest_event_id: EventId | None


class Health(Struct):
    status: Literal["ok"]


class Problem(Struct):
    """RFC 9457 problem details. Extra members may appear (a 410 carries `oldest_event_id`)."""

    type: Annotated[str, Meta(examples=["urn:fswatch:problem:not-found"])]
    title: str
    status: Annotated[int, Meta(ge=400, le=599)]
    detail: str
