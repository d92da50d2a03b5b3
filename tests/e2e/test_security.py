"""Who may call the API: the daemon's own user on loopback or a Unix socket, or a bearer token."""

from __future__ import annotations

import json
import os
import pwd
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_api_fixtures import assert_problem, daemon_fixture  # noqa: F401
from tests.harness import SupervisorProc, WorkerProc, free_port, start_worker

SYSTEM_PYTHON = "/usr/bin/python3"
# A small client for another user: the system python and urllib, since the venv may not be theirs.
CLIENT = """
import json, sys, urllib.request, urllib.error
request = urllib.request.Request(sys.argv[1], headers=json.loads(sys.argv[2]))
try:
    with urllib.request.urlopen(request, timeout=10) as response:
        print(json.dumps([response.status, response.headers.get("content-type")]))
except urllib.error.HTTPError as exc:
    print(json.dumps([exc.code, exc.headers.get("content-type")]))
"""


def unused_uid() -> int:
    for uid in range(61_000, 62_000):
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid
    raise AssertionError("no free uid")


def as_other_user(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """GET ``url`` from a process of a uid that is not ours (and has no account at all)."""
    if os.geteuid() != 0:
        pytest.skip("running a client as another user needs root")
    if not Path(SYSTEM_PYTHON).exists():
        pytest.skip(f"{SYSTEM_PYTHON} is needed to run a client as another user")
    uid = unused_uid()
    done = subprocess.run(
        ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", SYSTEM_PYTHON, "-I", "-c", CLIENT,
         url, json.dumps(headers or {})],
        capture_output=True, text=True, timeout=30, cwd="/")
    if done.returncode != 0:
        pytest.skip(f"cannot run a client as uid {uid}: {done.stderr.strip()[-300:]}")
    status, content_type = json.loads(done.stdout)
    return int(status), str(content_type)


def token_of(daemon: tuple[SupervisorProc, WorkerProc]) -> str:
    return (daemon[0].state_dir / "token").read_text().strip()


def test_token_file_is_private(daemon: tuple[SupervisorProc, WorkerProc]) -> None:
    assert stat.S_IMODE((daemon[0].state_dir / "token").stat().st_mode) == 0o600


@pytest.mark.root
def test_another_user_on_loopback_gets_401(daemon: tuple[SupervisorProc, WorkerProc]) -> None:
    base = daemon[1].base_url
    status, content_type = as_other_user(f"{base}/watchers")
    assert status == 401 and content_type.startswith("application/problem+json")
    assert as_other_user(f"{base}/openapi.json")[0] == 401
    assert as_other_user(f"{base}/healthz")[0] == 200  # open to everyone
    assert as_other_user(f"{base}/watchers", {"Authorization": "Bearer wrong"})[0] == 401
    assert as_other_user(f"{base}/watchers", {"Authorization": f"Bearer {token_of(daemon)}"})[0] == 200


def test_own_user_is_let_in_even_with_a_wrong_token(daemon: tuple[SupervisorProc, WorkerProc]) -> None:
    # Our own uid is let in with or without a token; a wrong token is not held against it.
    base = daemon[1].base_url
    assert httpx.get(f"{base}/watchers", headers={"Authorization": "Bearer wrong"}).status_code == 200


def non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.123", 9))  # no packet is sent; this only picks a route
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") or address == "0.0.0.0" else address


@pytest.fixture
def open_worker(daemon: tuple[SupervisorProc, WorkerProc], tmp_path: Path) -> Iterator[tuple[WorkerProc, str]]:
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    worker = start_worker(daemon[0].state_dir, free_port(), "--host", "0.0.0.0", log_dir=tmp_path)
    try:
        yield worker, f"http://{address}:{worker.port}"
    finally:
        worker.stop()


def test_beyond_loopback_every_request_needs_the_token(daemon: tuple[SupervisorProc, WorkerProc],
                                                       open_worker: tuple[WorkerProc, str]) -> None:
    _, url = open_worker
    response = httpx.get(f"{url}/watchers")
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert httpx.get(f"{url}/healthz").status_code == 200
    authorised = httpx.get(f"{url}/watchers", headers={"Authorization": f"Bearer {token_of(daemon)}"})
    assert authorised.status_code == 200


def test_unix_socket_is_private_and_serves_the_api(daemon: tuple[SupervisorProc, WorkerProc], tmp_path: Path,
                                                   tree: Path) -> None:
    path = tmp_path / "api.sock"
    worker = start_worker(daemon[0].state_dir, None, "--unix-socket", str(path), log_dir=tmp_path)
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(path)), base_url="http://fswatch") as http:
            created = http.post("/watchers", json={"path": str(tree)})
            assert created.status_code == 201
            assert http.get(created.headers["location"]).json()["id"] == created.json()["id"]
    finally:
        worker.stop()
    assert not path.exists()
