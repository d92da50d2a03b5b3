"""``bench/run``: install the peers, run every workload on a fresh tree per peer, print the tables,
write ``bench/results/<timestamp>.json``."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import traceback
from typing import Any

from bench import machine
from bench.peers import all_peers
from bench.peers.base import Peer
from bench.results import RESULTS_DIR, timestamp, write_results
from bench.session import PeerError
from bench.sizes import PRESETS, Sizes, size_fields, with_overrides
from bench.table import targets_table, workload_table
from bench.targets import check_targets
from bench.workloads import WORKLOADS
from bench.workloads.base import Context, Metrics, Workload


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    preset = parser.add_mutually_exclusive_group()
    preset.add_argument("--smoke", action="store_const", dest="preset", const="smoke",
                        help="tiny sizes, finishes in well under a minute (CI)")
    preset.add_argument("--large", action="store_const", dest="preset", const="large",
                        help="50,000 directories, 100k burst, 1M foreign events")
    parser.add_argument("--peers", help="comma-separated peer names (default: all)")
    parser.add_argument("--workloads", help=f"comma-separated, of: {','.join(w.name for w in WORKLOADS)}")
    parser.add_argument("--no-install", action="store_true", help="use only peers already installed")
    parser.add_argument("--base-dir",
                        help="where the watched trees are made (default /tmp; with --smoke /dev/shm if it is "
                             "there, so a slow disk cannot push CI past a minute)")
    parser.add_argument("--out", help="directory for the results JSON (default bench/results)")
    for name, kind in size_fields():
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, dest=name, metavar="N")
    parser.set_defaults(preset="default")
    return parser.parse_args(argv)


def pick(items: list[Any], names: str | None, what: str) -> list[Any]:
    if not names:
        return items
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = set(wanted) - {i.name for i in items}
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(sorted(unknown))}")
    return [i for i in items if i.name in wanted]


def prepare(peers: list[Peer], allow_install: bool) -> tuple[list[Peer], dict[str, dict[str, Any]]]:
    ready, info = [], {}
    for peer in peers:
        reason = peer.prepare(allow_install)
        info[peer.name] = {"version": peer.version, "skipped": reason}
        if reason:
            print(f"skip {peer.name}: {reason}", flush=True)
        else:
            print(f"peer {peer.name} {peer.version}", flush=True)
            ready.append(peer)
    return ready, info


def run_one(workload: Workload, peer: Peer, ctx: Context) -> Metrics:
    started = time.monotonic()
    try:
        metrics = workload.run(peer, ctx)
    except PeerError as exc:
        metrics = {"error": str(exc)}
    except Exception as exc:  # one peer's failure must not end the run: record it and go on
        traceback.print_exc(file=sys.stderr)
        metrics = {"error": f"{type(exc).__name__}: {exc}"}
    shown = {k: v for k, v in metrics.items() if k != "error"} or metrics
    print(f"  {workload.name:<10} {peer.name:<12} {time.monotonic() - started:5.1f}s  {shown}", flush=True)
    return metrics


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes: Sizes = with_overrides(PRESETS[args.preset], {n: getattr(args, n) for n, _ in size_fields()})
    workloads: list[Workload] = pick(WORKLOADS, args.workloads, "workloads")
    if args.base_dir is None:
        args.base_dir = "/dev/shm" if args.preset == "smoke" and os.path.isdir("/dev/shm") else "/tmp"
    machine_info = machine.describe(args.base_dir)
    print(f"machine: {machine_info}\nsizes ({args.preset}): {sizes}", flush=True)
    peers, peer_info = prepare(pick(all_peers(), args.peers, "peers"), not args.no_install)
    stamp = timestamp()
    workdir = tempfile.mkdtemp(prefix="fswatch-bench-run-", dir="/tmp")
    results: dict[str, dict[str, Metrics]] = {}
    started = time.monotonic()
    try:
        for workload in workloads:
            ctx = Context(sizes=sizes, workdir=workdir, base_dir=args.base_dir)
            results[workload.name] = {p.name: run_one(workload, p, ctx) for p in peers if workload.applies(p)}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    targets = check_targets(results)
    print()
    for workload in workloads:
        if results.get(workload.name):
            print(workload_table(f"{workload.title} ({workload.name})", workload.key, results[workload.name]))
            print()
    print(targets_table(targets))
    record = {"started": stamp, "seconds": round(time.monotonic() - started, 1), "preset": args.preset,
              "machine": machine_info, "sizes": vars(sizes), "peers": peer_info, "results": results,
              "targets": targets}
    print(f"\nresults: {write_results(record, args.out or RESULTS_DIR, stamp)}")
    return 0
