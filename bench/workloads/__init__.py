"""The six workloads of issue 5; ``WORKLOADS`` is their order in a run and in the table."""

from __future__ import annotations

from bench.workloads.base import Workload
from bench.workloads.burst import Burst
from bench.workloads.latency import Latency
from bench.workloads.multiplex import Multiplex
from bench.workloads.newdir import NewDirRace
from bench.workloads.serving import Serving
from bench.workloads.setup import Setup

WORKLOADS: list[Workload] = [Setup(), Burst(), Latency(), NewDirRace(), Multiplex(), Serving()]
