"""Move pairing across read boundaries (pure unit: synthetic raw events, a real loop)."""

from __future__ import annotations

import asyncio

from fswatch_supervisor.backends.base import RawEvent
from fswatch_supervisor.mirror.pairing import Move, MovePairer, Op
from tests.unit.test_mirror_support import async_test


def collector() -> tuple[list[Op], MovePairer]:
    ops: list[Op] = []
    return ops, MovePairer(asyncio.get_running_loop(), ops.extend, grace_s=0.05)


@async_test
async def test_pairs_within_a_batch_and_keeps_order() -> None:
    ops, pairer = collector()
    src, dst = RawEvent("/t/a", "moved_from", cookie=7), RawEvent("/t/b", "moved_to", cookie=7)
    before, after = RawEvent("/t/x", "created"), RawEvent("/t/y", "created")
    pairer.feed([before, src, after, dst])
    assert ops == [before, Move(src, dst), after]
    assert not pairer.holding


@async_test
async def test_a_move_split_across_reads_is_still_one_move() -> None:
    ops, pairer = collector()
    src, dst = RawEvent("/t/a", "moved_from", cookie=9), RawEvent("/t/b", "moved_to", cookie=9)
    later = RawEvent("/t/a", "created")  # a new /t/a after the move: must come after it
    pairer.feed([RawEvent("/t/x", "created"), src])
    assert ops == [RawEvent("/t/x", "created")] and pairer.holding
    pairer.feed([dst, later])
    assert ops[1:] == [Move(src, dst), later]
    await asyncio.sleep(0.08)
    assert len(ops) == 3, "the grace timer was cancelled"


@async_test
async def test_unpaired_moved_from_is_final_after_the_grace() -> None:
    ops, pairer = collector()
    src = RawEvent("/t/a", "moved_from", cookie=3)
    pairer.feed([src, RawEvent("/t/z", "modified")])
    assert ops == []
    await asyncio.sleep(0.08)
    assert ops == [src, RawEvent("/t/z", "modified")]
    lone_to = RawEvent("/t/q", "moved_to", cookie=4)
    pairer.feed([lone_to])
    assert ops[-1] == lone_to


@async_test
async def test_interleaved_and_unpaired_moves_pair_by_cookie() -> None:
    ops, pairer = collector()
    a_from, a_to = RawEvent("/t/a", "moved_from", cookie=1), RawEvent("/t/a2", "moved_to", cookie=1)
    b_from, b_to = RawEvent("/t/b", "moved_from", cookie=2), RawEvent("/t/b2", "moved_to", cookie=2)
    out = RawEvent("/t/gone", "moved_from", cookie=3)  # moved to a directory nobody watches
    c_from, c_to = RawEvent("/t/c", "moved_from", cookie=4), RawEvent("/t/c2", "moved_to", cookie=4)
    pairer.feed([a_from, b_from, b_to, a_to, c_from, c_to])
    assert ops == [Move(a_from, a_to), Move(b_from, b_to), Move(c_from, c_to)]
    pairer.feed([out, c_from, c_to])
    await asyncio.sleep(0.08)  # ``out`` and what follows it wait for a partner, then go as they are
    assert ops[3:] == [out, Move(c_from, c_to)]


@async_test
async def test_the_grace_lasts_while_the_backend_still_holds_events() -> None:
    # A busy machine can leave the second half of a rename unread for longer than the grace.
    ops: list[Op] = []
    pending = [True]
    pairer = MovePairer(asyncio.get_running_loop(), ops.extend, grace_s=0.02, events_pending=lambda: pending[0],
                        wait_max_s=5.0)
    src, dst = RawEvent("/t/a", "moved_from", cookie=5), RawEvent("/t/b", "moved_to", cookie=5)
    pairer.feed([src])
    await asyncio.sleep(0.1)  # five graces: still waiting, since events are pending
    assert ops == [] and pairer.holding
    pairer.feed([dst])
    assert ops == [Move(src, dst)]

    lone = RawEvent("/t/c", "moved_from", cookie=6)
    pairer.feed([lone])
    await asyncio.sleep(0.05)
    assert ops[-1] != lone
    pending[0] = False  # nothing left anywhere: the partner is not coming
    await asyncio.sleep(0.05)
    assert ops[-1] == lone and not pairer.holding


@async_test
async def test_the_grace_ends_at_its_maximum_however_long_events_stay_pending() -> None:
    ops: list[Op] = []
    pairer = MovePairer(asyncio.get_running_loop(), ops.extend, grace_s=0.01, events_pending=lambda: True,
                        wait_max_s=0.05)
    lone = RawEvent("/t/c", "moved_from", cookie=8)
    pairer.feed([lone])
    await asyncio.sleep(0.15)
    assert ops == [lone]
