"""``/watchers`` and ``/watchers/{id}``: create, describe, list, delete."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from fswatch_api.backend import call
from fswatch_api.operations import Handler, Operation, Reply, json_response
from fswatch_api.schemas import (
    CreateWatcher,
    Deleted,
    DeleteWatchersQuery,
    ListWatchersQuery,
    Watcher,
    WatcherList,
)
from fswatch_supervisor.errors import BadRequest


def tag_map(tags: list[str]) -> dict[str, str]:
    """``["k=v", ...]`` → ``{"k": "v"}``; a key asked for with two values is a contradiction (400)."""
    selected: dict[str, str] = {}
    for tag in tags:
        key, _, value = tag.partition("=")
        if selected.get(key, value) != value:
            raise BadRequest(f"tag {key!r} asked for with two different values")
        selected[key] = value
    return selected


async def create_watcher(request: Request, _query: None, body: CreateWatcher) -> Response:
    if any("\0" in text for text in body.texts()):
        raise BadRequest("paths and patterns may not contain a NUL character")
    watcher = await call(request, "create_watcher", **body.to_rpc())
    return json_response(watcher, 201, headers={"Location": f"/watchers/{watcher['id']}"})


async def list_watchers(request: Request, query: ListWatchersQuery, _body: None) -> Response:
    result = await call(request, "list_watchers", ids=query.id or None, tags=tag_map(query.tag) or None,
                        limit=query.limit, cursor=query.cursor)
    return json_response(result)


async def delete_watchers(request: Request, query: DeleteWatchersQuery, _body: None) -> Response:
    if not query.id and not query.tag:
        raise BadRequest("give at least one selector: id=... or tag=KEY=VALUE")
    result = await call(request, "delete_watchers", ids=query.id or None, tags=tag_map(query.tag) or None)
    return json_response(result)


async def get_watcher(request: Request, _query: None, _body: None) -> Response:
    return json_response(await call(request, "get_watcher", id=request.path_params["id"]))


async def delete_watcher(request: Request, _query: None, _body: None) -> Response:
    await call(request, "delete_watcher", id=request.path_params["id"])
    return Response(status_code=204)


CREATE = Operation(
    "POST", "/watchers", "createWatcher", "Create a watcher",
    description="Watch a directory (or one file) recursively with `path`, or give a rule set.",
    body=CreateWatcher,
    replies={201: Reply("The watcher was created.", Watcher,
                        headers={"Location": "`/watchers/{id}` of the new watcher."})},
    problems=(400, 403, 413, 422, 507),
)
LIST = Operation(
    "GET", "/watchers", "listWatchers", "List watchers",
    description="Filter by `id` (any of) and `tag` (all of); page with `limit` and `cursor`.",
    query=ListWatchersQuery, replies={200: Reply("A page of watchers.", WatcherList)}, problems=(400,),
)
DELETE_MANY = Operation(
    "DELETE", "/watchers", "deleteWatchers", "Delete the watchers that match",
    description="At least one selector is required.", query=DeleteWatchersQuery,
    replies={200: Reply("The ids that were deleted.", Deleted)}, problems=(400,),
)
GET = Operation(
    "GET", "/watchers/{id}", "getWatcher", "Describe a watcher",
    replies={200: Reply("The watcher.", Watcher)}, problems=(404,),
)
DELETE = Operation(
    "DELETE", "/watchers/{id}", "deleteWatcher", "Delete a watcher",
    description="Ends its open event streams after a final `watcher-deleted` event.",
    replies={204: Reply("Deleted.")}, problems=(404,),
)

ROUTES: list[tuple[Operation, Handler]] = [
    (CREATE, create_watcher), (LIST, list_watchers), (DELETE_MANY, delete_watchers),
    (GET, get_watcher), (DELETE, delete_watcher),
]
