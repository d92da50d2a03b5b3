"""How a front-end's exit reads to the process that runs it (``fswatchd serve``'s arbiter).

The values are the supervisor's (``fswatch_supervisor.exitcodes``), imported so the two cannot
drift: ``BOOT_ERROR`` (bad options, port in use, unreadable state) would fail the same way on every
restart, so the arbiter stops; ``CRASH`` is restarted with backoff.
"""

from typing import Final

from fswatch_supervisor import exitcodes as _shared

OK: Final = _shared.OK
CRASH: Final = _shared.CRASH
CONFIG_ERROR: Final = _shared.BOOT_ERROR
BIND_ERROR: Final = _shared.BOOT_ERROR
