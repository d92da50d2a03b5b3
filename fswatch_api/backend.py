"""How a route talks to the supervisor: the lifespan's RPC client, on behalf of the caller's uid."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from fswatch_supervisor.client import AsyncSupervisorClient


async def call(request: Request, op: str, *, timeout: float | None = None, **args: Any) -> dict[str, Any]:
    """One RPC; RequestError and BusError propagate to the problem-details handlers."""
    client: AsyncSupervisorClient = request.state.client
    return await client.call(op, timeout=timeout, user=getattr(request.state, "user", None), **args)
