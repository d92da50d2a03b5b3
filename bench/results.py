"""The run's record: ``bench/results/<UTC timestamp>.json`` (written whole, then renamed)."""

from __future__ import annotations

import json
import os
import time
from typing import Any

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def timestamp() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def write_results(record: dict[str, Any], directory: str = RESULTS_DIR, stamp: str | None = None) -> str:
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{stamp or timestamp()}.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(record, fh, indent=2, sort_keys=False)
        fh.write("\n")
    os.replace(tmp, path)
    return path
