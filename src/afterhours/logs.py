"""Log lines: key=value text or JSON objects (AFTERHOURS_LOG_FORMAT), each carrying the id of
the request (or socket event) it was logged for.

The id travels in a context variable, set by whoever starts the unit of work (app.RequestId,
realtime's ack handler); asyncio copies it into the tasks started under it, so every line
logged while handling a request names it, not only the 500s.
"""

import contextlib
import logging
import sys
from collections.abc import Iterator
from contextvars import ContextVar

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

TEXT_FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"


@contextlib.contextmanager
def request_context(value: str) -> Iterator[None]:
    """Lines logged inside carry `value` as their request_id."""
    token = request_id.set(value)
    try:
        yield
    finally:
        request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


def json_formatter() -> logging.Formatter:
    # Only these fields (no pathname, thread, ...): time (ISO 8601, UTC), level, logger,
    # message, request_id, and exc_info when there is a traceback.
    # Fields a library passes in `extra` (procrastinate's job, action) are kept: they are
    # structured already. uvicorn's ANSI-coloured copy of its message is not.
    return JsonFormatter(
        ["levelname", "name", "message", "request_id"],
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",
        reserved_attrs=[*RESERVED_ATTRS, "color_message"],
    )


def configure(log_format: str = "text") -> None:
    """Everything logged in the process goes to stderr in `log_format` (`text` or `json`)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    if log_format == "json":
        handler.setFormatter(json_formatter())
        # A warning printed by the warnings module would be the one line that is not JSON.
        logging.captureWarnings(True)
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
