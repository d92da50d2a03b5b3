"""A watcher: one client's rules, tags and delivery settings. Pure data plus its public description."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from typing import Any

from fswatch_supervisor.eventmodel import format_id, format_time
from fswatch_supervisor.rules import RuleSet

DEFAULT_COALESCE_MS = 50


def new_watcher_id(serial: int) -> str:
    """URL-safe and opaque; the serial makes it unique for the life of the store, the random part
    keeps ids unguessable and distinct across state directories."""
    return f"w_{_base36(serial)}{secrets.token_urlsafe(6).replace('-', 'x').replace('_', 'y')}"


def _base36(value: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        value, rem = divmod(value, 36)
        out = digits[rem] + out
        if value == 0:
            return out


@dataclass(slots=True)
class Watcher:
    id: str
    serial: int
    rules: RuleSet
    path: str
    tags: dict[str, str]
    coalesce_ms: int
    ttl_s: int | None
    created_ns: int
    owner_uid: int = field(default_factory=os.getuid)
    last_touch: float = 0.0
    """Monotonic time of the last request naming this watcher (for ``ttl_s``)."""

    @property
    def roots(self) -> tuple[str, ...]:
        return self.rules.roots

    def covers(self, path: str) -> bool:
        """Whether ``path`` lies in (or is) one of this watcher's include roots."""
        return any(path == root or path.startswith(root + "/") or root == "/" for root in self.rules.roots)

    def describe(self, bounds: tuple[int | None, int | None]) -> dict[str, Any]:
        oldest, latest = bounds
        return {
            "id": self.id,
            "path": self.path,
            "rules": self.rules.to_json(),
            "tags": dict(self.tags),
            "coalesce_ms": self.coalesce_ms,
            "ttl_s": self.ttl_s,
            "created_at": format_time(self.created_ns),
            "oldest_event_id": None if oldest is None else format_id(oldest),
            "latest_event_id": None if latest is None else format_id(latest),
        }

    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.id, "serial": self.serial, "rules": self.rules.to_json(), "path": self.path,
            "tags": self.tags, "coalesce_ms": self.coalesce_ms, "ttl_s": self.ttl_s,
            "created_ns": self.created_ns, "owner_uid": self.owner_uid,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Watcher:
        return cls(
            id=record["id"], serial=record["serial"], rules=RuleSet.parse(record["rules"]),
            path=record["path"], tags=dict(record["tags"]), coalesce_ms=record["coalesce_ms"],
            ttl_s=record["ttl_s"], created_ns=record["created_ns"],
            owner_uid=record.get("owner_uid", os.getuid()),
        )
