import ctypes
import os
from pathlib import Path

from bench.procstats import PeakRss, inotify_watches, pss_bytes, rss_bytes

libc = ctypes.CDLL(None, use_errno=True)
IN_CREATE = 0x100


def test_counts_inotify_watches_held_by_a_process(tmp_path: Path) -> None:
    before = inotify_watches([os.getpid()])
    fd = libc.inotify_init1(0)
    assert fd >= 0
    try:
        for name in ("a", "b", "c"):
            path = os.path.join(tmp_path, name)
            os.mkdir(path)
            assert libc.inotify_add_watch(fd, path.encode(), IN_CREATE) >= 0
        assert inotify_watches([os.getpid()]) == before + 3
    finally:
        os.close(fd)
    assert inotify_watches([os.getpid()]) == before


def test_rss_of_this_process_is_positive_and_peak_tracks_it() -> None:
    assert rss_bytes([os.getpid()]) > 1_000_000
    with PeakRss(lambda: [os.getpid()], interval=0.01) as peak:
        pass
    assert peak.peak >= peak.last > 0


def test_pss_counts_shared_pages_once_so_it_is_at_most_the_rss() -> None:
    me = [os.getpid()]
    assert 0 < pss_bytes(me) <= rss_bytes(me)
