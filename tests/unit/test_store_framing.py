"""Record framing: what survives a torn or corrupted tail, and where a writer must truncate."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fswatch_supervisor.store import framing

payload_lists = st.lists(st.binary(max_size=64), max_size=12)


@given(payload_lists)
def test_scan_returns_every_record_of_an_intact_log(payloads: list[bytes]) -> None:
    data = framing.encode_records(payloads)
    result = framing.scan(data)
    assert [p for _off, p in result.records] == payloads
    assert result.valid_end == len(data)
    assert result.torn_bytes == 0


@given(payload_lists, st.data())
def test_any_truncation_keeps_exactly_the_complete_records(payloads: list[bytes], data: st.DataObject) -> None:
    log = framing.encode_records(payloads)
    cut = data.draw(st.integers(0, len(log)))
    result = framing.scan(log[:cut])
    complete = []
    pos = 0
    for p in payloads:
        pos += framing.HEADER_SIZE + len(p)
        if pos <= cut:
            complete.append(p)
    assert [p for _off, p in result.records] == complete
    assert result.valid_end == sum(framing.HEADER_SIZE + len(p) for p in complete)


@given(payload_lists, st.binary(min_size=1, max_size=40))
def test_trailing_garbage_is_reported_as_torn(payloads: list[bytes], garbage: bytes) -> None:
    log = framing.encode_records(payloads)
    result = framing.scan(log + garbage)
    # Garbage can by chance frame a valid empty record only if it starts with a zero length and
    # the crc of b"" (0); anything else must be cut.
    if not garbage.startswith(struct.pack("<II", 0, zlib.crc32(b""))):
        assert result.valid_end == len(log)
        assert result.torn_bytes == len(garbage)


def test_a_flipped_checksum_stops_the_scan_at_that_record() -> None:
    log = bytearray(framing.encode_records([b"one", b"two", b"three"]))
    second = framing.HEADER_SIZE + 3
    log[second + 4] ^= 0xFF  # first byte of the second record's crc
    result = framing.scan(bytes(log))
    assert [p for _o, p in result.records] == [b"one"]
    assert result.valid_end == second


def test_a_huge_length_in_a_torn_header_is_not_trusted() -> None:
    log = framing.encode_record(b"ok") + struct.pack("<II", 2**31, 0) + b"x" * 10
    result = framing.scan(log)
    assert [p for _o, p in result.records] == [b"ok"]


def test_payload_at_reads_a_record_and_rejects_a_damaged_one() -> None:
    log = framing.encode_records([b"alpha", b"beta"])
    second = framing.HEADER_SIZE + 5
    assert framing.payload_at(log, second) == b"beta"
    damaged = log[:-1] + b"X"
    with pytest.raises(ValueError, match="checksum"):
        framing.payload_at(damaged, second)
    with pytest.raises(ValueError, match="overruns"):
        framing.payload_at(log[:-1], second)


def test_oversized_payload_is_refused_at_encoding() -> None:
    with pytest.raises(ValueError):
        framing.encode_record(b"\0" * (framing.MAX_PAYLOAD + 1))


def test_scan_file_reads_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_bytes(framing.encode_records([b"a", b"b"]) + b"\x05\x00")
    result = framing.scan_file(str(path))
    assert [p for _o, p in result.records] == [b"a", b"b"]
    assert result.torn_bytes == 2
