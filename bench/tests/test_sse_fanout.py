from hypothesis import given
from hypothesis import strategies as st

from bench.children.sse_fanout import Client


def _stream(n: int) -> bytes:
    out = b""
    for i in range(1, n + 1):
        eid = f"{i:020d}"
        out += f'id: {eid}\r\ndata: {{"id": "{eid}", "action": "created"}}\r\n\r\n'.encode()
        if i % 7 == 0:
            out += b": keep-alive\r\n\r\n"
    return out


@given(n=st.integers(0, 60), cuts=st.lists(st.integers(0, 10_000), max_size=40))
def test_counts_every_event_and_the_last_id_however_the_stream_is_split(n: int, cuts: list[int]) -> None:
    data = _stream(n)
    client = Client()
    client.tail = b"\n"
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    for ts, (a, b) in enumerate(zip(points, points[1:], strict=False)):
        client.feed(data[a:b], ts)
    assert client.events == n
    assert client.last_id == (f"{n:020d}" if n else "")
