"""Pydantic models: they validate request bodies and query strings, and generate the OpenAPI schemas.

Bodies are strict (JSON types are not coerced: ``"50"`` is not an integer) and closed
(``extra="forbid"``: unknown keys are a 400). Query models are lax, since every query value arrives
as a string, and closed too. Response models exist for the OpenAPI document; responses themselves
are the supervisor's maps, passed through unchanged.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

EVENT_ID_PATTERN = r"^[0-9]{20}$"
CURSOR_ID_PATTERN = r"^[0-9]{1,20}$"
TAG_PATTERN = r"^[^=]+=.*$"
WATCHER_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
RFC3339_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"

EventId = Annotated[str, Field(pattern=EVENT_ID_PATTERN, examples=["00000000000000000042"])]
AbsPath = Annotated[str, Field(min_length=1, max_length=4096, examples=["/home/me/project"])]

Rule = (
    tuple[Literal["include-path"], AbsPath]
    | tuple[Literal["exclude-path"], AbsPath]
    | tuple[Literal["include-glob"], Annotated[str, Field(min_length=1, max_length=4096)]]
    | tuple[Literal["exclude-glob"], Annotated[str, Field(min_length=1, max_length=4096)]]
    | tuple[Literal["exclude-hidden"]]
    | tuple[Literal["include-hidden"]]
)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateWatcher(_Body):
    """Exactly one of ``path`` and ``rules``."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [{"required": ["path"]}, {"required": ["rules"]}],
            "examples": [{"path": "/home/me/project", "tags": {"team": "exo"}},
                         {"rules": [["include-path", "/home/me/project"], ["exclude-glob", "**/*.pyc"]]}],
        },
    )

    path: AbsPath | SkipJsonSchema[None] = Field(None, description="Directory or file to watch, recursively; "
                                 'means `[["include-path", path], ["exclude-hidden"]]`.')
    rules: Annotated[list[Rule], Field(min_length=1, max_length=1000)] | SkipJsonSchema[None] = Field(
        None, description="Rules applied in order; the last matching wins.")
    tags: dict[str, str] = Field(default_factory=dict, max_length=100,
                                 description="Arbitrary key/value pairs for later lookup.")
    coalesce_ms: int = Field(50, ge=0, le=3_600_000,
                             description="Window in which bursts of changes to one path merge.")
    ttl_s: int | None = Field(None, gt=0, le=2**31,
                              description="Delete the watcher after this many idle seconds.")

    @model_validator(mode="after")
    def _one_selector(self) -> CreateWatcher:
        for key in ("path", "rules"):
            if key in self.model_fields_set and getattr(self, key) is None:
                raise ValueError(f"{key!r} may not be null; leave it out instead")
        if (self.path is None) == (self.rules is None):
            raise ValueError("give exactly one of 'path' and 'rules'")
        if self.rules is not None and not any(rule[0] == "include-path" for rule in self.rules):
            raise ValueError("a rule set needs at least one include-path rule")
        return self

    def to_rpc(self) -> dict[str, Any]:
        args = self.model_dump(exclude_none=True)
        if self.rules is not None:
            args["rules"] = [list(rule) for rule in self.rules]
        args["ttl_s"] = self.ttl_s
        return args


class SyncBody(_Body):
    timeout_s: float = Field(10.0, gt=0, le=30,
                             description="Give up (504) when the cookie is not observed in time.")


class ListWatchersQuery(_Query):
    id: list[str] = Field(default_factory=list, description="Watcher ids; any of them (repeatable).")
    tag: list[Annotated[str, Field(pattern=TAG_PATTERN)]] = Field(
        default_factory=list, description="`KEY=VALUE`; all of them (repeatable).")
    limit: int = Field(100, ge=1, le=1000)
    cursor: str | None = Field(None, max_length=1024, description="The `next` of the previous page.")


class DeleteWatchersQuery(_Query):
    id: list[str] = Field(default_factory=list, description="Watcher ids; any of them (repeatable).")
    tag: list[Annotated[str, Field(pattern=TAG_PATTERN)]] = Field(
        default_factory=list, description="`KEY=VALUE`; all of them (repeatable).")


class EventsQuery(_Query):
    after: str | None = Field(None, pattern=CURSOR_ID_PATTERN,
                              description="Only events with a greater id (exclusive cursor).")
    since: str | None = Field(None, max_length=64, pattern=RFC3339_PATTERN, examples=["2026-11-24T05:50:00Z"],
                              description="Only events with time ≥ since (RFC 3339).")
    limit: int = Field(1000, ge=1, le=10_000)
    wait: float = Field(0, ge=0, le=60, description="Long-poll: seconds to hold an empty answer.")
    stream: bool = Field(False, description="Answer with Server-Sent Events, as `Accept: text/event-stream`.")


class SnapshotQuery(_Query):
    limit: int = Field(1000, ge=1, le=10_000)
    cursor: str | None = Field(None, max_length=1024, description="The `next` of the previous page.")


class ExplainQuery(_Query):
    path: AbsPath


# ---- responses (documentation only) ----

class Watcher(BaseModel):
    id: str = Field(examples=["w_3kq9ab"])
    path: str
    rules: list[list[str]]
    tags: dict[str, str]
    coalesce_ms: int
    ttl_s: int | None
    created_at: str = Field(examples=["2026-11-24T05:50:00.123456Z"])
    oldest_event_id: EventId | None
    latest_event_id: EventId | None


class WatcherList(BaseModel):
    items: list[Watcher]
    next: str | None = Field(description="Cursor of the next page; null on the last one.")


class Deleted(BaseModel):
    deleted: list[str]


class Event(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: EventId
    action: Literal["created", "updated", "deleted", "moved", "overflow", "root-deleted", "watch-error",
                    "watcher-deleted"]
    path: str
    kind: Literal["file", "dir", "symlink", "other"] | None
    time: str = Field(examples=["2026-11-24T05:50:01.020304Z"])
    from_: str | None = Field(None, alias="from", description="Only for `moved`: the old path.")
    rescan: bool | None = Field(None, description="Reported by a rescan, not by a live OS event.")
    detail: str | None = Field(None, description="For `watch-error` and `overflow`.")


class EventPage(BaseModel):
    items: list[Event]
    next_after: EventId | None
    oldest_event_id: EventId | None
    latest_event_id: EventId | None


class SnapshotItem(BaseModel):
    path: str
    kind: Literal["file", "dir", "symlink", "other"] | None
    size: int | None
    mtime: str | float | None


class SnapshotPage(BaseModel):
    items: list[SnapshotItem]
    next: str | None
    after: EventId | None = Field(description="Follow changes from this event id.")


class Explanation(BaseModel):
    path: str
    selected: bool
    rule: list[str] | None
    os_watched: bool


class SyncResult(BaseModel):
    latest_event_id: EventId | None


class Health(BaseModel):
    status: Literal["ok"]


class Problem(BaseModel):
    """RFC 9457 problem details. Extra members may appear (a 410 carries `oldest_event_id`)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["urn:fswatch:problem:not-found"])
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
