"""Benchmark of fswatch against peer file-watching tools (see notes/bench.md)."""
