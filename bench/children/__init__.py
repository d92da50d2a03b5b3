"""Scripts run as peer child processes; they speak the line protocol of ``emit``."""
