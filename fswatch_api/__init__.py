"""The fswatch HTTP/SSE API: a starlette app that talks to the supervisor over ZeroMQ."""

from fswatch_api.app import begin_drain, create_app
from fswatch_api.settings import ApiSettings

__all__ = ["ApiSettings", "begin_drain", "create_app"]
