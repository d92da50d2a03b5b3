"""Checking RPC arguments. The front-end validates first; this keeps direct ZeroMQ clients honest too.

Every failure is a ``BadRequest`` that names the argument and what was wrong with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fswatch_supervisor.errors import BadRequest
from fswatch_supervisor.eventmodel import parse_id, parse_time

ENVELOPE_KEYS = frozenset({"op", "rid", "user"})


def only_keys(args: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(args) - allowed - ENVELOPE_KEYS)
    if unknown:
        raise BadRequest(f"unknown argument(s): {', '.join(map(str, unknown))}")


def integer(args: dict[str, Any], key: str, default: int | None, low: int, high: int | None = None) -> int | None:
    value = args.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{key} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f"{low}..{high}" if high is not None else f">= {low}"
        raise BadRequest(f"{key} must be in {bounds}, got {value}")
    return value


def number(args: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = args.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"{key} must be a number, got {value!r}")
    if not low <= value <= high:
        raise BadRequest(f"{key} must be in {low:g}..{high:g}, got {value}")
    return float(value)


def string(args: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = args.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{key} must be a non-empty string")
    return value


def string_list(args: dict[str, Any], key: str) -> list[str]:
    value = args.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"{key} must be a list of strings")
    return value


def tag_map(args: dict[str, Any], key: str) -> dict[str, str]:
    value = args.get(key, {})
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in value.items()):
        raise BadRequest(f"{key} must be an object mapping strings to strings")
    return value


def event_id(args: dict[str, Any], key: str) -> int | None:
    return _parsed(args, key, parse_id)


def timestamp(args: dict[str, Any], key: str) -> int | None:
    return _parsed(args, key, parse_time)


def _parsed(args: dict[str, Any], key: str, parse: Callable[[str], int]) -> int | None:
    value = args.get(key)
    if value is None:
        return None
    try:
        return parse(value)
    except ValueError as exc:
        raise BadRequest(f"{key}: {exc}") from None
