"""The file-system mirror: OS events → normalised ``Change`` objects, and a model of every tree."""

from __future__ import annotations

from fswatch_supervisor.mirror.mirror import FsMirror

__all__ = ["FsMirror"]
