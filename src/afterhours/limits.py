"""In-process rate limits, for any feature.

Per process: with N serving processes a user could reach N times the limit (each process counts
only the sockets and requests it serves). That is enough to stop a runaway client or a script
flooding one person; a shared limit would need Redis or a table and is not worth a round trip on
every request. Time is the monotonic clock, not `clock.now()`: a limit is about this process's
real seconds, and tests freezing the domain clock must not freeze it.
"""

import math
import time
from collections import deque
from collections.abc import Callable, Hashable

from afterhours.errors import AppError

MAX_KEYS = 100_000  # past this many keys, idle ones are dropped before adding another


class SlidingWindow:
    """At most `limit` hits per `window` seconds per key."""

    def __init__(
        self, *, limit: int, window: float, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self.monotonic = monotonic
        self.hits: dict[Hashable, deque[float]] = {}

    def take(self, key: Hashable) -> int | None:
        """Count a hit for `key`; None if allowed, else whole seconds until one would be."""
        now = self.monotonic()
        hits = self.hits.get(key)
        if hits is None:
            if len(self.hits) >= MAX_KEYS:
                self._drop_idle(now)
            hits = self.hits[key] = deque()
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return max(1, math.ceil(hits[0] + self.window - now))
        hits.append(now)
        return None

    def give_back(self, key: Hashable) -> None:
        """Undo the last hit of `key` (a resend that stored nothing new)."""
        hits = self.hits.get(key)
        if hits:
            hits.pop()

    def _drop_idle(self, now: float) -> None:
        idle = [k for k, hits in self.hits.items() if not hits or hits[-1] <= now - self.window]
        for key in idle:
            del self.hits[key]


def rate_limited(what: str, retry_after: int) -> AppError:
    """429 RATE_LIMITED with the seconds to wait, in the body's text and in Retry-After."""
    return AppError(
        "RATE_LIMITED",
        f"Too many {what}; try again in {retry_after} s",
        status=429,
        headers={"Retry-After": str(retry_after)},
    )
