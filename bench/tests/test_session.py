import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import pytest

from bench.session import Session, child_env, child_python, spawn
from bench.workloads.base import settle

FAKE = r"""
import sys, time
print("R", flush=True)
for line in sys.stdin:
    cmd = line.rstrip("\n").split("\t")
    if cmd[0] == "quit":
        break
    now = time.time_ns()
    print(f"A\t{cmd[1]}\t1234\tinfo", flush=True)
    for i in range(3):
        print(f"E\t{now}\tcreated\t{cmd[2]}/f{i}", flush=True)
    print(f"E\t{now}\tmoved\t{cmd[2]}/new\t{cmd[2]}/old", flush=True)
    print(f"O\t{now}\tIN_Q_OVERFLOW", flush=True)
"""


@pytest.fixture(name="session")
def _session() -> Iterator[Session]:
    proc = spawn([sys.executable, "-c", FAKE], os.path.join(tempfile.mkdtemp(), "err"))
    session = Session("fake", proc)
    session.wait_ready(timeout=10)
    yield session
    session.stop()
    assert proc.poll() is not None


def test_session_records_acks_events_moves_and_overflows(session: Session) -> None:
    assert session.command("watch", "w0", "/d", timeout=10) == 1234
    assert session.wait(lambda r: len(r.overflows) == 1, 10)
    events = session.events_from(0)
    assert [e.path for e in events] == ["/d/f0", "/d/f1", "/d/f2", "/d/new"]
    assert events[-1].src == "/d/old"
    assert all(abs(e.ts - time.time_ns()) < 10e9 for e in events)


def test_settle_returns_as_soon_as_every_expected_path_came_and_the_stream_is_idle(session: Session) -> None:
    session.send("watch", "w0", "/d")
    start = time.monotonic()
    seen = settle(session, 0, {"/d/f0", "/d/old"}, quiet=30.0, timeout=30.0)
    assert {"/d/f0", "/d/f1", "/d/f2", "/d/new", "/d/old"} <= seen
    assert time.monotonic() - start < 5.0  # did not wait for the 30 s quiet


def test_settle_gives_up_after_quiet_when_a_path_never_comes(session: Session) -> None:
    session.send("watch", "w0", "/d")
    start = time.monotonic()
    seen = settle(session, 0, {"/d/never"}, quiet=0.5, timeout=30.0)
    assert "/d/never" not in seen
    assert 0.5 <= time.monotonic() - start < 5.0


def test_stamp_relay_turns_inotifywait_lines_into_events_and_overflows() -> None:
    relay = subprocess.Popen(child_python("stamp.py") + ["inotifywait"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, env=child_env())
    out, _ = relay.communicate(b"CREATE\t/t/a\nQ_OVERFLOW\t\nMOVED_TO\t/t/b\n", timeout=30)
    records = [line.split("\t") for line in out.decode().splitlines()]
    assert [r[0] for r in records] == ["R", "A", "E", "O", "E"]
    assert records[2][2:] == ["CREATE", "/t/a"] and records[4][3] == "/t/b"
