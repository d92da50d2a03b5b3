"""``fswatchd serve``: supervisor plus front-ends, restarted when they crash, stopped as a group."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from httpx_sse import connect_sse

from tests.harness import Proc, free_port, wait_until


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _worker_pid(serve: Proc, port: int) -> int:
    for child in psutil.Process(serve.pid).children(recursive=True):
        try:
            if str(port) in child.cmdline() and "fswatch_worker" in " ".join(child.cmdline()):
                return int(child.pid)
        except psutil.NoSuchProcess:
            continue
    raise AssertionError(f"no front-end process for port {port}")


@pytest.fixture
def serve(tmp_path: Path, state_dir: Path) -> Iterator[tuple[Proc, int]]:
    port = free_port()
    while not all(_port_free(p) for p in (port, port + 1)):
        port = free_port()
    proc = Proc([sys.executable, "-m", "fswatch_supervisor", "serve", "--port", str(port), "--workers", "2",
                 "--state-dir", str(state_dir)], tmp_path / "serve.log").start()
    try:
        wait_until(lambda: _healthy(port) and _healthy(port + 1), 30, 0.1, "both front-ends")
        yield proc, port
    finally:
        proc.stop()


def _port_free(port: int) -> bool:
    import socket
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def test_two_front_ends_see_the_same_watchers(serve: tuple[Proc, int], tree: Path) -> None:
    _, port = serve
    made = httpx.post(f"http://127.0.0.1:{port}/watchers", json={"path": str(tree)}).json()
    other = httpx.get(f"http://127.0.0.1:{port + 1}/watchers/{made['id']}")
    assert other.status_code == 200 and other.json()["id"] == made["id"]


def test_a_killed_front_end_is_restarted_and_a_stream_resumes_exactly_once(
        serve: tuple[Proc, int], tree: Path) -> None:
    proc, port = serve
    base = f"http://127.0.0.1:{port}"
    wid = httpx.post(f"{base}/watchers", json={"path": str(tree), "coalesce_ms": 0}).json()["id"]
    received: list[str] = []
    last_id: str | None = None
    first_pid = _worker_pid(proc, port)

    def write(start: int, stop: int) -> None:
        for i in range(start, stop):
            (tree / f"f{i}").write_text("x")

    with httpx.Client(timeout=httpx.Timeout(10, read=10)) as client:
        try:
            with connect_sse(client, "GET", f"{base}/watchers/{wid}/events") as stream:
                writer = threading.Thread(target=write, args=(0, 50))
                writer.start()
                for sse in stream.iter_sse():
                    if sse.id:
                        received.append(sse.id)
                        last_id = sse.id
                    if len(received) >= 10:
                        psutil.Process(first_pid).send_signal(signal.SIGKILL)
                        break
                writer.join()
        except httpx.HTTPError:
            pass
    wait_until(lambda: _healthy(port) and _worker_pid(proc, port) != first_pid, 30, 0.1, "the restarted front-end")
    write(50, 60)
    sync = httpx.post(f"{base}/watchers/{wid}/sync", timeout=30)
    assert sync.status_code == 200
    final = sync.json()["latest_event_id"]
    with httpx.Client(timeout=httpx.Timeout(10, read=10)) as client:
        headers = {"Last-Event-ID": last_id} if last_id else {}
        with connect_sse(client, "GET", f"{base}/watchers/{wid}/events", headers=headers) as stream:
            for sse in stream.iter_sse():
                if sse.id:
                    received.append(sse.id)
                if sse.id == final:
                    break
    assert len(received) == len(set(received)), "an event arrived twice"
    pulled = httpx.get(f"{base}/watchers/{wid}/events", params={"limit": 10000}).json()["items"]
    assert received == [e["id"] for e in pulled], "the stream missed or reordered events"


def test_sigterm_stops_every_process(serve: tuple[Proc, int]) -> None:
    proc, port = serve
    family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    assert len(family) >= 3
    proc.signal(signal.SIGTERM)
    assert proc.popen is not None
    assert proc.popen.wait(20) == 0
    _, alive = psutil.wait_procs(family, timeout=10)
    assert not alive


def test_systemd_hears_ready_once_a_front_end_answers(tmp_path: Path, state_dir: Path) -> None:
    import socket

    notify_path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify_path))
    listener.settimeout(30)
    port = free_port()
    proc = Proc([sys.executable, "-m", "fswatch_supervisor", "serve", "--port", str(port),
                 "--state-dir", str(state_dir)], tmp_path / "serve.log",
                env={"NOTIFY_SOCKET": str(notify_path)}).start()
    try:
        message = listener.recv(4096).decode()
        assert message == "READY=1"
        assert _healthy(port), "READY=1 came before the front-end answered"
    finally:
        proc.stop()
        listener.close()
