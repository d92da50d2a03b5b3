"""The route table: every operation of the API with its handler."""

from __future__ import annotations

from fswatch_api.operations import Handler, Operation
from fswatch_api.routes import events, service, watchers

TABLE: list[tuple[Operation, Handler]] = [*watchers.ROUTES, *events.ROUTES, *service.ROUTES]
