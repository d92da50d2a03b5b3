"""The front-end's pieces that need no process: validation, problem details, the OpenAPI document,
the worker's command line, and the import direction between packages."""

from __future__ import annotations

import ast
import asyncio
import socket
import stat
from pathlib import Path

import msgspec
import orjson
import pytest
from starlette.requests import Request
from starlette.responses import Response

from fswatch_api.openapi import build_openapi
from fswatch_api.operations import Operation, bind, describe
from fswatch_api.problems import from_request_error
from fswatch_api.routes import TABLE
from fswatch_api.schemas import CreateWatcher, EventsQuery, ExplainQuery, ListWatchersQuery
from fswatch_supervisor.errors import BadRequest, Gone, RequestError
from fswatch_worker import exitcodes
from fswatch_worker.config import ConfigError, parse_args
from fswatch_worker.runtime import bind_tcp, bind_unix, main

ROOT = Path(__file__).resolve().parents[2]


def _create(body: bytes) -> CreateWatcher:
    return msgspec.json.decode(body, type=CreateWatcher)


class TestCreateWatcherBody:
    def test_path_alone_and_rules_alone(self) -> None:
        assert _create(b'{"path": "/x"}').to_rpc() == {"path": "/x", "tags": {}, "coalesce_ms": 50, "ttl_s": None}
        rules = _create(b'{"rules": [["include-path", "/x"], ["exclude-glob", "*.o"], ["exclude-hidden"]]}')
        assert rules.to_rpc()["rules"] == [["include-path", "/x"], ["exclude-glob", "*.o"], ["exclude-hidden"]]
        assert rules.texts() == ["/x", "*.o"] and "path" not in rules.to_rpc()

    @pytest.mark.parametrize("body", [
        b'{"path": "/x", "rules": [["include-path", "/x"]]}', b"{}", b'{"path": null}', b'{"path": "/x", "q": 1}',
        b'{"path": "/x", "coalesce_ms": "5"}', b'{"path": "/x", "ttl_s": true}', b'{"rules": [["exclude-hidden"]]}',
        b'{"rules": null}', b'{"rules": []}', b"[", b'{"rules": [["include-path", "/x", "y"]]}',
        b'{"rules": [["include-path"]]}', b'{"rules": [["exclude-everything"]]}', b'{"rules": [["include-path", ""]]}',
    ])
    def test_rejected(self, body: bytes) -> None:
        with pytest.raises(msgspec.DecodeError):
            _create(body)

    @pytest.mark.parametrize(("body", "summary"), [
        (b'{"path": "/x", "colour": 1}', "unknown body 'colour'"),
        (b'{"rules": []}', "body 'rules': Expected `array` of length >= 1"),
        (b'{"path": "/x", "coalesce_ms": "5"}', "body 'coalesce_ms': Expected `int`, got `str`"),
        (b'{"path": null}', "body 'path': Expected `str`, got `null`"),
        (b"{}", "give exactly one of 'path' and 'rules'"),
        (b'{"path": ', "malformed JSON: Input data was truncated"),
        (b'{"rules": [["include-path", "/x", "y"]]}', "body 'rules': a rule has more elements than its name and "
                                                       "1 argument(s)"),
        (b'{"rules": [["include-path", "/x"], ["exclude-hidden", 1]]}', "body 'rules': a rule has more elements "
                                                                         "than its name and 0 argument(s)"),
        (b'{"rules": [["include-path"]]}', "body 'rules[0]': Expected `array` of at least length 2, got 1"),
    ])
    def test_error_summary_is_short_and_names_the_field(self, body: bytes, summary: str) -> None:
        with pytest.raises(msgspec.DecodeError) as caught:
            _create(body)
        assert describe(caught.value, "body") == summary


class TestQuery:
    """Query strings through the endpoint wrapper: converted from strings, bounded, closed."""

    @staticmethod
    async def _parse(query: str, struct: type[msgspec.Struct] = EventsQuery) -> object:
        seen: list[object] = []

        async def handler(_request: Request, parsed: object, _body: None) -> Response:
            seen.append(parsed)
            return Response()

        endpoint = bind(Operation("GET", "/x", "x", "x", replies={}, query=struct), handler)
        await endpoint(Request({"type": "http", "method": "GET", "path": "/x", "query_string": query.encode(),
                                "headers": [], "path_params": {}}))
        return seen[0]

    def test_values_are_converted_from_strings(self) -> None:
        parsed = asyncio.run(self._parse("limit=5&stream=true&wait=0.5&after=7"))
        assert parsed == EventsQuery(limit=5, stream=True, wait=0.5, after="7")

    def test_a_required_parameter_left_out_is_named(self) -> None:
        with pytest.raises(BadRequest) as caught:
            asyncio.run(self._parse("", ExplainQuery))
        assert caught.value.detail == "missing query parameter 'path'"

    def test_repeatable_parameters_are_lists(self) -> None:
        parsed = asyncio.run(self._parse("id=a&id=b&tag=k%3Dv&limit=3", ListWatchersQuery))
        assert parsed == ListWatchersQuery(id=["a", "b"], tag=["k=v"], limit=3)
        with pytest.raises(BadRequest, match=r"query parameter 'tag\[0\]': Expected `str` matching regex"):
            asyncio.run(self._parse("tag=nokey", ListWatchersQuery))

    @pytest.mark.parametrize(("query", "summary"), [
        ("limit=10001", "query parameter 'limit': Expected `int` <= 10000"),
        ("limit=1e3", "query parameter 'limit': Expected `int`, got '1e3'"),
        ("limit=5.0", "query parameter 'limit': Expected `int`, got '5.0'"),
        ("limit=1&limit=2", "query parameter 'limit' given 2 times; it takes one value"),
        ("colour=red", "unknown query parameter 'colour'"),
        ("stream=maybe", "query parameter 'stream': Expected `bool`, got `str`"),
    ])
    def test_bad_values_are_400s_that_name_the_parameter(self, query: str, summary: str) -> None:
        with pytest.raises(BadRequest) as caught:
            asyncio.run(self._parse(query))
        assert caught.value.detail == summary


class TestProblems:
    def test_extra_members_pass_through(self) -> None:
        response = from_request_error(Gone("discarded", oldest_event_id="00000000000000000007"))
        body = orjson.loads(response.body)
        assert response.status_code == 410 and response.media_type == "application/problem+json"
        assert body == {"type": "urn:fswatch:problem:cursor-expired", "title": "Gone", "status": 410,
                        "detail": "discarded", "oldest_event_id": "00000000000000000007"}

    def test_a_bare_status_from_the_wire_is_named_by_its_status(self) -> None:
        error = RequestError.from_dict({"status": 504, "type": "bad-request", "detail": "slow"})
        body = orjson.loads(from_request_error(error).body)
        assert body["status"] == 504 and body["title"] == "Gateway Timeout"
        assert body["type"] == "urn:fswatch:problem:sync-timeout"


def test_openapi_document_is_complete() -> None:
    document = build_openapi(TABLE, version="test")
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation["responses"], (method, path)
            assert operation["operationId"] and operation["summary"]
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    assert "application/problem+json" in response["content"], (method, path, status)
            names = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert names == {part[1:-1] for part in path.split("/") if part.startswith("{")}
    for name, schema in document["components"]["schemas"].items():
        # A rule is an array of fixed shape (["include-path", "/abs"]); everything else an object.
        assert schema.get("type") == ("array" if name.endswith(("Path", "Glob", "Hidden")) else "object"), name
    orjson.dumps(document)  # it is plain JSON


class TestWorkerCommandLine:
    @pytest.fixture(autouse=True)
    def _no_logging_setup(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """``main`` configures logging for a process; not for the test runner's."""
        monkeypatch.setattr("fswatch_worker.runtime.configure_logging", lambda *_a, **_k: None)

    def test_defaults(self, tmp_path: Path) -> None:
        config = parse_args(["--port", "3001", "--state-dir", str(tmp_path)])
        assert config.host == "127.0.0.1" and config.loopback_only and config.stream_queue_limit == 10_000
        assert config.endpoints.rpc == f"ipc://{tmp_path}/sock/rpc.ipc"

    @pytest.mark.parametrize("argv", [
        [], ["--port", "x"], ["--port", "70000"], ["--port", "1", "--rpc", "tcp://127.0.0.1:1"],
        ["--port", "1", "--keepalive", "20"], ["--port", "1", "--stream-queue-limit", "0"], ["--port", "1", "--bogus"],
    ])
    def test_bad_options_are_config_errors(self, argv: list[str]) -> None:
        with pytest.raises(ConfigError):
            parse_args(argv)

    def test_bad_options_exit_with_the_no_restart_code(self) -> None:
        assert main(["--port", "nope"]) == exitcodes.CONFIG_ERROR == exitcodes.BIND_ERROR

    def test_port_in_use_is_a_bind_error(self, tmp_path: Path) -> None:
        with socket.create_server(("127.0.0.1", 0)) as taken:
            port = taken.getsockname()[1]
            assert main(["--port", str(port), "--state-dir", str(tmp_path)]) == exitcodes.BIND_ERROR
            with pytest.raises(OSError):
                bind_tcp("127.0.0.1", port)

    def test_unix_socket_is_owner_only(self, tmp_path: Path) -> None:
        path = tmp_path / "api.sock"
        with bind_unix(path):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
        with bind_unix(path):  # a stale socket file of an earlier run is replaced
            assert path.exists()


def test_api_imports_only_the_supervisors_public_modules() -> None:
    allowed = {"fswatch_supervisor", "fswatch_supervisor.errors", "fswatch_supervisor.eventmodel",
               "fswatch_supervisor.protocol", "fswatch_supervisor.client", "fswatch_supervisor.logs"}
    for source in (ROOT / "fswatch_api").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fswatch_"):
                assert not node.module.startswith("fswatch_worker"), source
                if node.module.startswith("fswatch_supervisor"):
                    assert node.module in allowed, f"{source.name} imports {node.module}"
