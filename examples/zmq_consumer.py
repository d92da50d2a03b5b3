"""A complete ZeroMQ consumer of fswatch using only pyzmq and msgpack.

    python examples/zmq_consumer.py /path/to/watch [STATE_DIR]

Creates a watcher over RPC, subscribes to its events on the PUB socket, prints what arrives for
ten seconds, then deletes the watcher.
"""

import os
import sys
import time

import msgpack
import zmq

tree = os.path.abspath(sys.argv[1])
state_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.expanduser("~/.local/state/fswatch")
rpc_endpoint = f"ipc://{state_dir}/sock/rpc.ipc"
pub_endpoint = f"ipc://{state_dir}/sock/pub.ipc"

context = zmq.Context()
rpc = context.socket(zmq.REQ)  # REQ is enough for one request at a time; DEALER allows many in flight
rpc.connect(rpc_endpoint)


def call(op, **args):
    rpc.send(msgpack.packb({"op": op, **args}))
    if not rpc.poll(10_000):
        sys.exit(f"no answer from the supervisor at {rpc_endpoint}")
    reply = msgpack.unpackb(rpc.recv())
    if not reply["ok"]:
        error = reply["error"]  # {"status", "type", "title", "detail"}, as the HTTP problem details
        sys.exit(f"{op} failed: {error['status']} {error['detail']}")
    return reply["result"]


watcher = call("create_watcher", path=tree, coalesce_ms=20, tags={"example": "zmq"})
print("watching", tree, "as", watcher["id"])

sub = context.socket(zmq.SUB)
sub.connect(pub_endpoint)
sub.setsockopt_string(zmq.SUBSCRIBE, watcher["id"])  # the topic is the watcher id

# Events stored before the subscription took effect are still readable over RPC: read them first,
# then follow the PUB socket, skipping ids already seen (ids are comparable 20-digit strings).
last_id = None
for event in call("read_events", id=watcher["id"])["items"]:
    print(event)
    last_id = event["id"]

deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    if sub.poll(200):
        topic, payload = sub.recv_multipart()
        event = msgpack.unpackb(payload)
        if last_id is None or event["id"] > last_id:
            print(event)
            last_id = event["id"]

call("delete_watcher", id=watcher["id"])
context.destroy(linger=0)
