"""Process exit codes: the error channel between the arbiter and the processes it runs.

A front-end that exits with ``BOOT_ERROR`` would fail the same way again (bad option, port in use),
so the arbiter stops instead of restarting it in a loop. Any other non-zero exit after the worker
was up is a crash, restarted with backoff.
"""

from typing import Final

OK: Final = 0
CRASH: Final = 1
USAGE: Final = 2
BOOT_ERROR: Final = 3
"""Configuration or bind failure: restarting cannot help."""
STORE_BUSY: Final = 4
"""Another supervisor already holds this state directory."""
