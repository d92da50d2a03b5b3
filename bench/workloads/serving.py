"""Workload 6, serving (fswatch only, through its HTTP API): pull throughput in pages of 1,000, a
quiet watcher's pull latency with many other watchers' events in the store, and SSE fan-out (C
clients each receiving a burst: none lost, time until the last client has the last event)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from typing import Any

import httpx

from bench.peers.base import Peer
from bench.peers.fswatch import FswatchDaemon
from bench.procstats import rss_bytes
from bench.session import child_env, child_python, end_process
from bench.stats import summary_ms
from bench.workloads.base import Context, Metrics, Workload, mb, ms

PAGE = 1000
ZERO_ID = "0" * 20


def create_files(directory: str, count: int, prefix: str) -> int:
    """Create ``count`` empty files spread over 100 subdirectories; returns ns at the last return."""
    subdirs = [os.path.join(directory, f"s{i:02d}") for i in range(100)]
    for d in subdirs:
        os.makedirs(d, exist_ok=True)
    for i in range(count):
        os.close(os.open(os.path.join(subdirs[i % 100], f"{prefix}{i}"), os.O_WRONLY | os.O_CREAT, 0o644))
    return time.time_ns()


class Api:
    def __init__(self, url: str, timeout: float) -> None:
        self.http = httpx.Client(base_url=url, timeout=timeout)

    def watch(self, path: str, coalesce_ms: int = 0) -> str:
        resp = self.http.post("/watchers", json={"path": path, "coalesce_ms": coalesce_ms})
        resp.raise_for_status()
        return str(resp.json()["id"])

    def sync(self, watcher: str) -> str:
        resp = self.http.post(f"/watchers/{watcher}/sync")
        resp.raise_for_status()
        return str(resp.json()["latest_event_id"] or ZERO_ID)

    def page(self, watcher: str, after: str) -> dict[str, Any]:
        resp = self.http.get(f"/watchers/{watcher}/events", params={"after": after, "limit": PAGE})
        resp.raise_for_status()
        result: dict[str, Any] = resp.json()
        return result

    def pull_all(self, watcher: str, after: str, deadline: float) -> int:
        count = 0
        while time.monotonic() < deadline:
            body = self.page(watcher, after)
            if not body["items"]:
                break
            count += len(body["items"])
            after = body["next_after"]
        return count


class Serving(Workload):
    name = "serving"
    title = "serving"
    key = "pull_events_per_s"

    def applies(self, peer: Peer) -> bool:
        return peer.serves and super().applies(peer)

    def run(self, peer: Peer, ctx: Context) -> Metrics:
        s = ctx.sizes
        root = tempfile.mkdtemp(prefix="fswatch-bench-serving-", dir=ctx.base_dir)
        workdir = tempfile.mkdtemp(dir=ctx.workdir, prefix="fswatch-serving-")
        daemon = FswatchDaemon(workdir, ["--retain-events", str(10 * (s.foreign_events + s.pull_events))])
        try:
            api = Api(daemon.url, s.timeout_s)
            metrics = self._pull(api, root, s.pull_events, s.timeout_s)
            metrics |= self._quiet(api, root, s.foreign_events, s.timeout_s)
            metrics |= self._fanout(api, daemon, root, s.sse_clients, s.sse_events, s.timeout_s)
            metrics["rss_mb"] = mb(rss_bytes([daemon.proc.pid]))
            return metrics
        finally:
            end_process(daemon.proc, grace=0.0)
            shutil.rmtree(root, ignore_errors=True)

    def _pull(self, api: Api, root: str, n: int, timeout: float) -> Metrics:
        busy = os.path.join(root, "pull")
        os.makedirs(busy)
        watcher = api.watch(busy)
        create_files(busy, n, "p")
        api.sync(watcher)
        start = time.perf_counter()
        count = api.pull_all(watcher, ZERO_ID, time.monotonic() + timeout)
        elapsed = time.perf_counter() - start
        return {"pull_events": count, "pull_events_per_s": round(count / elapsed) if elapsed else None}

    def _quiet(self, api: Api, root: str, foreign: int, timeout: float) -> Metrics:
        quiet_dir = os.path.join(root, "quiet")
        busy = os.path.join(root, "foreign")
        os.makedirs(quiet_dir)
        os.makedirs(busy)
        quiet = api.watch(quiet_dir)
        noisy = api.watch(busy)
        first = int(api.sync(noisy))
        stored = 0
        deadline = time.monotonic() + timeout
        batch = 0
        while stored < foreign and time.monotonic() < deadline:
            for _ in range(min(max((foreign - stored) // 2000, 1), 25)):
                # create and delete, so a million events do not leave a million files behind
                names = [os.path.join(busy, f"x{batch}-{i}") for i in range(1000)]
                for name in names:
                    os.close(os.open(name, os.O_WRONLY | os.O_CREAT, 0o644))
                for name in names:
                    os.unlink(name)
                batch += 1
            stored = int(api.sync(noisy)) - first
        lat: list[int] = []
        for _ in range(200):
            start = time.perf_counter_ns()
            api.page(quiet, ZERO_ID)
            lat.append(time.perf_counter_ns() - start)
        summary = summary_ms(lat)
        return {"foreign_events": stored, "quiet_pull_p50_ms": summary["p50"],
                "quiet_pull_p99_ms": summary["p99"]}

    def _fanout(self, api: Api, daemon: FswatchDaemon, root: str, clients: int, events: int,
                timeout: float) -> Metrics:
        fan_dir = os.path.join(root, "fanout")
        os.makedirs(fan_dir)
        watcher = api.watch(fan_dir)
        after = api.sync(watcher)
        proc = subprocess.Popen(
            child_python("sse_fanout.py") + ["127.0.0.1", str(daemon.port), watcher, after,
                                             str(clients), str(timeout)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=child_env())
        assert proc.stdin is not None and proc.stdout is not None
        try:
            if proc.stdout.readline().strip() != "R":
                return {"sse_error": "fan-out clients did not connect"}
            last_op = create_files(fan_dir, events, "f")
            latest = api.sync(watcher)
            expected = api.pull_all(watcher, after, time.monotonic() + timeout)
            proc.stdin.write(f"expect {latest}\n")
            proc.stdin.flush()
            results = [json.loads(line) for line in proc.stdout]
        finally:
            proc.wait(timeout=timeout)
        complete = [r for r in results if r["events"] == expected and r["last_id"] == latest]
        last = max((r["last_ts"] for r in results), default=0)
        return {
            "sse_clients": clients,
            "sse_events_each": expected,
            "sse_clients_lost_events": clients - len(complete),
            "sse_last_delivery_ms": ms(last - last_op) if complete else None,
        }
