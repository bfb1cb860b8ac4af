"""The one clock. Code asks `clock.now()`; tests swap in a `FrozenClock`."""

from datetime import UTC, datetime, timedelta


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock(Clock):
    """A clock that moves only when told to (tests, retention runs)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta) -> None:
        self.at += delta


clock: Clock = Clock()


def set_clock(new: Clock) -> Clock:
    """Install `new` as the clock and return the previous one."""
    global clock
    previous, clock = clock, new
    return previous


def now() -> datetime:
    return clock.now()
