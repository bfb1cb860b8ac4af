"""In-process rate limits for chat.

Per process: with N serving processes a user could reach N times the limit (each process counts
only the sockets and requests it serves). That is enough to stop a runaway client or a script
flooding one person; a shared limit would need Redis or a table and is not worth a round trip on
every message. Time is the monotonic clock, not `clock.now()`: a limit is about this process's
real seconds, and tests freezing the domain clock must not freeze it.
"""

import math
import time
from collections import deque
from collections.abc import Callable, Hashable

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


class Throttle:
    """At most one pass per `interval` seconds per key; the rest are dropped silently."""

    def __init__(self, *, interval: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.monotonic = monotonic
        self.last: dict[Hashable, float] = {}

    def recently_passed(self, key: Hashable) -> bool:
        last = self.last.get(key)
        return last is not None and self.monotonic() - last < self.interval

    def mark(self, key: Hashable) -> None:
        now = self.monotonic()
        if len(self.last) >= MAX_KEYS:
            self.last = {k: t for k, t in self.last.items() if now - t < self.interval}
        self.last[key] = now


# 10 messages per 10 s per user: well above anyone typing, below a script flooding a match.
MESSAGES_PER_WINDOW = 10
MESSAGE_WINDOW_SECONDS = 10.0
# A client sends typing on keystrokes; the other phone needs to hear it at most every 2 s.
TYPING_INTERVAL_SECONDS = 2.0

messages = SlidingWindow(limit=MESSAGES_PER_WINDOW, window=MESSAGE_WINDOW_SECONDS)
typing = Throttle(interval=TYPING_INTERVAL_SECONDS)
