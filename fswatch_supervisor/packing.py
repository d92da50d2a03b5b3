"""msgpack encoding for the hot paths (every event is packed for the store and for the PUB socket).

A reused ``Packer`` is three times faster than ``msgpack.packb``, which builds one per call (0.3 vs
0.9 µs for an event map). A Packer keeps state between calls, so each thread gets its own.
"""

from __future__ import annotations

import threading
from typing import Any

import msgpack

_local = threading.local()


def pack(value: Any) -> bytes:
    """``msgpack.packb(value, use_bin_type=True)``, faster."""
    try:
        packer = _local.packer
    except AttributeError:
        packer = _local.packer = msgpack.Packer(use_bin_type=True)
    result: bytes = packer.pack(value)
    return result
