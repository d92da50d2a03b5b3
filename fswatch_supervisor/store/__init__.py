"""The append-only event store; see ``eventstore.py``."""

from fswatch_supervisor.store.eventstore import EventStore
from fswatch_supervisor.store.records import FsyncPolicy, NewEvent

__all__ = ["EventStore", "FsyncPolicy", "NewEvent"]
