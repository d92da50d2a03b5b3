"""Benchmark of fswatch against peer file-watching tools (see the README's Benchmark section)."""
