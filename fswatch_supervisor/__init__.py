"""fswatch supervisor: OS watches, the watcher registry, the event store and the ZeroMQ sockets."""

__version__ = "0.1.0"
