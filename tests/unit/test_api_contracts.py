"""The front-end's pieces that need no process: validation, problem details, the OpenAPI document,
the worker's command line, and the import direction between packages."""

from __future__ import annotations

import ast
import socket
import stat
from pathlib import Path

import orjson
import pytest
from pydantic import ValidationError

from fswatch_api.openapi import build_openapi
from fswatch_api.operations import describe
from fswatch_api.problems import from_request_error
from fswatch_api.routes import TABLE
from fswatch_api.schemas import CreateWatcher, EventsQuery
from fswatch_supervisor.errors import Gone, RequestError
from fswatch_worker import exitcodes
from fswatch_worker.config import ConfigError, parse_args
from fswatch_worker.runtime import bind_tcp, bind_unix, main

ROOT = Path(__file__).resolve().parents[2]


class TestCreateWatcherBody:
    def test_path_alone_and_rules_alone(self) -> None:
        assert CreateWatcher.model_validate_json(b'{"path": "/x"}').to_rpc()["path"] == "/x"
        rules = CreateWatcher.model_validate_json(b'{"rules": [["include-path", "/x"], ["exclude-hidden"]]}')
        assert rules.to_rpc()["rules"] == [["include-path", "/x"], ["exclude-hidden"]]

    @pytest.mark.parametrize("body", [
        b'{"path": "/x", "rules": [["include-path", "/x"]]}', b"{}", b'{"path": null}', b'{"path": "/x", "q": 1}',
        b'{"path": "/x", "coalesce_ms": "5"}', b'{"path": "/x", "ttl_s": true}', b'{"rules": [["exclude-hidden"]]}',
        b'{"rules": null}', b'{"rules": []}', b"[",
    ])
    def test_rejected(self, body: bytes) -> None:
        with pytest.raises(ValidationError):
            CreateWatcher.model_validate_json(body)

    def test_error_summary_is_short_and_names_the_field(self) -> None:
        with pytest.raises(ValidationError) as caught:
            CreateWatcher.model_validate_json(b'{"path": "/x", "colour": 1}')
        assert describe(caught.value, "body") == "unknown body 'colour'"
        with pytest.raises(ValidationError) as caught:
            CreateWatcher.model_validate_json(b'{"rules": []}')
        assert describe(caught.value, "body").startswith("body 'rules': List should have at least 1")


def test_query_values_are_coerced_from_strings_but_bounded() -> None:
    assert EventsQuery.model_validate({"limit": "5", "stream": "true", "wait": "0.5"}).limit == 5
    with pytest.raises(ValidationError):
        EventsQuery.model_validate({"limit": "10001"})


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
        assert schema.get("type") == "object", name
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
