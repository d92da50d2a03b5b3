"""The OpenAPI 3.1 document, generated from the route table and the msgspec structs that validate
requests (see ``operations``), so what is documented is what is enforced."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import msgspec

from fswatch_api.operations import Handler, Operation
from fswatch_api.problems import MEDIA_TYPE as PROBLEM_MEDIA_TYPE
from fswatch_api.problems import problem_body
from fswatch_api.schemas import WATCHER_ID_PATTERN, Problem

REF = "#/components/schemas/{name}"
SSE_EXAMPLE = ('id: 00000000000000000042\ndata: {"id":"00000000000000000042","action":"created",'
               '"path":"/home/me/project/a.py","kind":"file","time":"2026-11-24T05:50:01.020304Z"}\n\n')
PROBLEM_TEXT = {
    400: "Malformed JSON, wrong types, unknown keys or parameters, or an invalid rule or glob.",
    401: "Neither a loopback peer of the daemon's user nor a valid bearer token.",
    403: "The caller may not read that path.",
    404: "Unknown watcher.",
    410: "Events after the cursor were discarded by retention; the body carries `oldest_event_id`. "
         "Resynchronise from the snapshot.",
    413: "The body is larger than 1 MiB.",
    422: "The path is not absolute, does not exist, or is neither a directory nor a regular file.",
    503: "The supervisor does not answer (or this front-end is shutting down). Retry.",
    504: "Changes did not settle within `timeout_s`.",
    507: "The OS refused more watches; the detail names the limit and how to raise it.",
}


def _problem_example(status: int) -> dict[str, Any]:
    example: dict[str, Any] = problem_body(status, PROBLEM_TEXT.get(status, HTTPStatus(status).phrase))
    return example


def _param_schema(prop: dict[str, Any]) -> dict[str, Any]:
    """A query property's schema without the ``null`` branch of an optional field (a parameter is
    left out, never null)."""
    options = prop.get("anyOf")
    if options:
        concrete = [o for o in options if o.get("type") != "null"]
        if len(concrete) == 1:
            merged: dict[str, Any] = {k: v for k, v in prop.items() if k != "anyOf"} | concrete[0]
            if merged.get("default", 0) is None:
                del merged["default"]
            return merged
    return dict(prop)


def _parameters(op: Operation, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True,
         "schema": {"type": "string", "pattern": WATCHER_ID_PATTERN}, "example": "w_3kq9ab",
         "description": "The watcher's id."}
        for name in op.path_params
    ]
    if op.query is not None:
        schema = schemas[op.query.__name__]
        required = set(schema.get("required", ()))
        for name, prop in schema["properties"].items():
            prop_schema = _param_schema(prop)
            description = prop_schema.pop("description", "")
            prop_schema.pop("title", None)
            param: dict[str, Any] = {"name": name, "in": "query", "required": name in required,
                                     "schema": prop_schema}
            if description:
                param["description"] = description
            if prop_schema.get("type") == "array":
                param.update(style="form", explode=True)
            params.append(param)
    for header, description in op.headers.items():
        params.append({"name": header, "in": "header", "required": False, "description": description,
                       "schema": {"type": "string", "pattern": r"^\s*[0-9]{1,20}\s*$"}})
    return params


def _responses(op: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, reply in op.replies.items():
        entry: dict[str, Any] = {"description": reply.description}
        content: dict[str, Any] = {}
        if reply.model is not None:
            content["application/json"] = {"schema": {"$ref": REF.format(name=reply.model.__name__)}}
        if reply.media_type is not None:
            content[reply.media_type] = {"schema": reply.schema or {}}
        if reply.event_stream:
            content["text/event-stream"] = {"schema": {"type": "string"}, "example": SSE_EXAMPLE}
        if content:
            entry["content"] = content
        if reply.headers:
            entry["headers"] = {name: {"description": text, "schema": {"type": "string"}}
                                for name, text in reply.headers.items()}
        responses[str(status)] = entry
    problems = set(op.problems) | ({401, 503} if op.authenticated else set())
    for status in sorted(problems):
        responses[str(status)] = {
            "description": PROBLEM_TEXT.get(status, HTTPStatus(status).phrase),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": REF.format(name="Problem")},
                                             "example": _problem_example(status)}},
        }
    return responses


def _operation(op: Operation, schemas: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary, "tags": [op.tag],
                           "parameters": _parameters(op, schemas), "responses": _responses(op)}
    if op.description:
        doc["description"] = op.description
    if not op.authenticated:
        doc["security"] = []
    if op.body is not None:
        doc["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": {"$ref": REF.format(name=op.body.__name__)}}},
        }
    return doc


def _structs(table: list[tuple[Operation, Handler]]) -> list[type[msgspec.Struct]]:
    structs: dict[str, type[msgspec.Struct]] = {"Problem": Problem}
    for op, _ in table:
        for struct in [op.query, op.body, *(reply.model for reply in op.replies.values())]:
            if struct is not None:
                structs[struct.__name__] = struct
    return list(structs.values())


def component_schemas(table: list[tuple[Operation, Handler]]) -> dict[str, Any]:
    """Every struct's JSON Schema by name: the bodies', the replies' and the rules' (components),
    and the query structs' (read by ``_parameters``, then dropped: a query is no component)."""
    structs = _structs(table)
    _, schemas = msgspec.json.schema_components(structs, ref_template=REF)
    for struct in structs:
        schemas[struct.__name__] |= getattr(struct, "openapi_extra", {})
    return schemas


def build_openapi(table: list[tuple[Operation, Handler]], *, version: str) -> dict[str, Any]:
    schemas = component_schemas(table)
    paths: dict[str, dict[str, Any]] = {}
    for op, _ in table:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, schemas)
    for op, _ in table:
        if op.query is not None:
            schemas.pop(op.query.__name__, None)
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "fswatch",
            "version": version,
            "description": "A long-lived file watching daemon: watchers with rules, retained events to pull, "
                           "and Server-Sent Events to push. Errors are RFC 9457 problem details.",
        },
        "servers": [{"url": "http://127.0.0.1:3000"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "The token in STATE_DIR/token. Not needed from a loopback (or Unix-socket) "
                               "peer that runs as the daemon's own user."}},
        },
        "security": [{}, {"bearer": []}],
    }
    return document
