"""The front-end process runtime: ``python -m fswatch_worker --port N ...`` serves ``fswatch_api``."""
