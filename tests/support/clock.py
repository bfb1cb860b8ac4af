"""Moving the service's clock for a block of service calls."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from afterhours import clock
from afterhours.clock import FrozenClock


@contextmanager
def frozen_at(at: datetime) -> Iterator[None]:
    """The service's clock at `at`, just for the block (the server in this process sees it too,
    so keep the block to the service calls under test)."""
    previous = clock.set_clock(FrozenClock(at))
    try:
        yield
    finally:
        clock.set_clock(previous)
