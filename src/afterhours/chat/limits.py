"""Chat's rate limits: messages per user (a sliding window), typing per match (a throttle).

Per process, on the monotonic clock, like every limit in afterhours.limits.
"""

import time
from collections.abc import Callable, Hashable

from afterhours.limits import MAX_KEYS, SlidingWindow


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
