"""A watchman client speaking JSON on the server's unix socket: watch-project + subscribe.

Subscriptions keep watchman's default settle (20 ms). The first answer of a subscription (the
fresh-instance listing of existing files) is not a change and is skipped; a later fresh instance
or a recrawl warning means watchman lost events and is reported as an overflow.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from typing import Any

from bench.children import emit

FIELDS = ["name", "exists", "new", "type"]


class Client:
    def __init__(self, sockname: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(sockname)
        self.reader = self.sock.makefile("rb")
        self.replies: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        self.bases: dict[str, str] = {}  # subscription name -> absolute prefix of its file names
        self.fresh_seen: set[str] = set()

    def request(self, cmd: list[Any], timeout: float = 60.0) -> dict[str, Any]:
        with self.cond:
            self.sock.sendall(json.dumps(cmd).encode() + b"\n")
            if not self.cond.wait_for(lambda: bool(self.replies), timeout):
                raise TimeoutError(f"watchman did not answer {cmd[0]}")
            reply = self.replies.pop(0)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply

    def pump(self) -> None:
        for line in self.reader:
            ts = time.time_ns()
            pdu = json.loads(line)
            if "subscription" in pdu and pdu.get("unilateral", True) and "files" in pdu:
                self.on_subscription(pdu, ts)
            elif pdu.get("unilateral"):
                continue
            else:
                with self.cond:
                    self.replies.append(pdu)
                    self.cond.notify_all()

    def on_subscription(self, pdu: dict[str, Any], ts: int) -> None:
        name = pdu["subscription"]
        if "warning" in pdu:
            emit.overflow(str(pdu["warning"]))
        if pdu.get("is_fresh_instance"):
            if name in self.fresh_seen:
                emit.overflow("fresh instance (recrawl)")
            self.fresh_seen.add(name)
            return
        base = self.bases.get(name, pdu.get("root", ""))
        for f in pdu["files"]:
            action = "deleted" if not f.get("exists", True) else ("created" if f.get("new") else "updated")
            emit.event(action, os.path.join(base, f["name"]), ts=ts)

    def subscribe(self, name: str, path: str) -> None:
        watch = self.request(["watch-project", path])
        query: dict[str, Any] = {"fields": FIELDS}
        rel = watch.get("relative_path")
        if rel:
            query["relative_root"] = rel
        self.bases[name] = path
        self.request(["subscribe", watch["watch"], name, query])


def main() -> None:
    client = Client(sys.argv[1])
    threading.Thread(target=client.pump, daemon=True).start()
    client.request(["version"])
    emit.ready()
    for cmd in emit.commands():
        if cmd[0] in ("watch", "create"):
            start = time.perf_counter_ns()
            try:
                client.subscribe(cmd[1], cmd[2])
            except (RuntimeError, TimeoutError) as exc:
                emit.error(f"{cmd[1]}: {exc}")
                continue
            emit.ack(cmd[1], time.perf_counter_ns() - start)


if __name__ == "__main__":
    main()
