"""Rate limits: shared by every process (sessions, messages, typing, blocks, reports), and one
kept per process (photo decodes, which cost this process's CPU).

Shared limits count hits per fixed window and judge by a sliding one, estimated from the current
and the previous window (Limiter.take): a whole batch of hits costs one statement, and a burst
straddling a window's edge is still one burst. Typing is a throttle instead (one per interval
since the last that passed): "at most every 2 s" is what the other phone needs.

The counts live in PostgreSQL, inside the caller's transaction (a request refused later, and so
rolled back, costs nothing), or in Redis when REDIS_URL is set: one pipelined round trip, and
no row locks held by busy senders. When Redis fails, counting falls back to PostgreSQL: a limit
still holds on a bad day.
"""

import logging
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, fields
from typing import Annotated, Any, NamedTuple, Protocol

import redis.asyncio
from fastapi import Depends, Request
from sqlalchemy import DateTime, Integer, String, delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from afterhours.auth import DB, Identity, premium_identity
from afterhours.db import Base, execute_bulk
from afterhours.errors import AppError
from afterhours.settings import Settings

log = logging.getLogger("afterhours.limits")

MAX_KEYS = 100_000  # past this many keys, idle ones are dropped before adding another


class Limit(NamedTuple):
    """At most `hits` per `seconds` per key, for what `name` counts. A tuple: hashed and
    compared in C, as every chat message's hit is (a dataclass's hash is Python code)."""

    name: str
    hits: int
    seconds: int

    @classmethod
    def parse(cls, name: str, text: str) -> "Limit":
        """From settings' "<hits>/<seconds>", e.g. "10/10"."""
        hits, _, seconds = text.partition("/")
        limit = cls(name, int(hits), int(seconds))
        if limit.hits < 1 or limit.seconds < 1:
            raise ValueError(f"limit {name}: hits and seconds must be positive, got {text!r}")
        return limit


@dataclass(frozen=True)
class Limits:
    """Every shared limit, as configured (Settings.limit_*; docs/operations.md)."""

    messages: Limit
    typing: Limit
    session_starts_hourly: Limit
    session_starts_daily: Limit
    blocks: Limit
    reports: Limit

    @classmethod
    def from_settings(cls, settings: Settings) -> "Limits":
        return cls(
            **{
                f.name: Limit.parse(f.name, getattr(settings, f"limit_{f.name}"))
                for f in fields(cls)
            }
        )


class RateCount(Base):
    """Hits per limit, key and window (the window's end: past it, the row is litter)."""

    __tablename__ = "rate_limit_counts"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    window_end: Mapped[Any] = mapped_column(DateTime(timezone=True), primary_key=True, index=True)
    hits: Mapped[int] = mapped_column(Integer)


class Throttle(Base):
    """When each throttled key may pass again (Limiter.throttle)."""

    __tablename__ = "rate_limit_throttles"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    until: Mapped[Any] = mapped_column(DateTime(timezone=True), index=True)


Hit = tuple[Limit, str]  # (limit, key)


class Tally(NamedTuple):
    """A key's counts once a batch is added: the current window's (the batch included) and the
    previous window's, and the seconds left in the current window."""

    current: int
    previous: int
    left: float


class Store(Protocol):
    async def add(self, db: AsyncSession, hits: Counter[Hit]) -> dict[Hit, Tally]: ...

    async def give_back(self, db: AsyncSession, hits: Counter[Hit]) -> None: ...

    async def pass_once(self, db: AsyncSession, limit: Limit, key: str) -> bool: ...


def _sorted(hits: Counter[Hit]) -> list[Hit]:
    # One order for every transaction, so two never lock shared rows crosswise (no deadlock):
    # by limit (its name first), then key.
    return sorted(hits)


def _columns(hits: Counter[Hit], order: list[Hit]) -> dict[str, list[Any]]:
    return {
        "names": [limit.name for limit, _ in order],
        "keys": [key for _, key in order],
        "seconds": [limit.seconds for limit, _ in order],
        "counts": [hits[hit] for hit in order],
    }


WINDOW_END = "to_timestamp((floor(extract(epoch FROM clock_timestamp()) / seconds) + 1) * seconds)"


class PostgresStore:
    async def add(self, db: AsyncSession, hits: Counter[Hit]) -> dict[Hit, Tally]:
        order = _sorted(hits)
        rows = await execute_bulk(
            db,
            "WITH added AS ("
            " INSERT INTO rate_limit_counts (name, key, window_end, hits)"
            f" SELECT name, key, {WINDOW_END}, n"
            " FROM unnest(%(names)b::text[], %(keys)b::text[], %(seconds)b::int[],"
            "   %(counts)b::int[]) WITH ORDINALITY AS t(name, key, seconds, n, i) ORDER BY i"
            " ON CONFLICT (name, key, window_end)"
            " DO UPDATE SET hits = rate_limit_counts.hits + excluded.hits"
            " RETURNING name, key, window_end, hits)"
            " SELECT a.name, a.key, a.hits, coalesce(p.hits, 0),"
            "   extract(epoch FROM a.window_end - clock_timestamp())"
            " FROM added a JOIN unnest(%(names)b::text[], %(keys)b::text[], %(seconds)b::int[])"
            "   AS t(name, key, seconds) ON t.name = a.name AND t.key = a.key"
            " LEFT JOIN rate_limit_counts p ON p.name = a.name AND p.key = a.key"
            "   AND p.window_end = a.window_end - t.seconds * interval '1 second'",
            _columns(hits, order),
        )
        by_name = {(limit.name, key): (limit, key) for limit, key in order}
        return {
            by_name[(name, key)]: Tally(int(current), int(previous), float(left))
            for name, key, current, previous, left in rows
        }

    async def give_back(self, db: AsyncSession, hits: Counter[Hit]) -> None:
        order = _sorted(hits)
        await execute_bulk(
            db,
            "UPDATE rate_limit_counts c SET hits = greatest(c.hits - t.n, 0)"
            " FROM unnest(%(names)b::text[], %(keys)b::text[], %(seconds)b::int[],"
            "   %(counts)b::int[]) AS t(name, key, seconds, n)"
            f" WHERE c.name = t.name AND c.key = t.key AND c.window_end = {WINDOW_END}",
            _columns(hits, order),
        )

    async def pass_once(self, db: AsyncSession, limit: Limit, key: str) -> bool:
        passed = await execute_bulk(
            db,
            "INSERT INTO rate_limit_throttles (name, key, until)"
            " VALUES (%(name)s, %(key)s, clock_timestamp() + %(seconds)s * interval '1 second')"
            " ON CONFLICT (name, key) DO UPDATE SET until = excluded.until"
            " WHERE rate_limit_throttles.until <= clock_timestamp() RETURNING 1",
            {"name": limit.name, "key": key, "seconds": limit.seconds},
        )
        return bool(passed)


class RedisStore:
    """INCRBY and EXPIRE per key, pipelined: one round trip however many hits."""

    def __init__(self, url: str, fallback: PostgresStore) -> None:
        self.client = redis.asyncio.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self.fallback = fallback

    async def add(self, db: AsyncSession, hits: Counter[Hit]) -> dict[Hit, Tally]:
        now = time.time()
        pipe = self.client.pipeline(transaction=False)
        ends = {}
        for hit, n in hits.items():
            ends[hit] = end = (math.floor(now / hit[0].seconds) + 1) * hit[0].seconds
            current = self._name(hit, end)
            pipe.incrby(current, n)
            pipe.expireat(current, end + hit[0].seconds + 1)  # read as "previous" for a window
            pipe.get(self._name(hit, end - hit[0].seconds))
        try:
            results = await pipe.execute()
        except redis.RedisError as exc:
            log.warning("rate_limit_fallback store=postgres error=%s", type(exc).__name__)
            return await self.fallback.add(db, hits)
        return {
            hit: Tally(int(results[3 * i]), int(results[3 * i + 2] or 0), ends[hit] - now)
            for i, hit in enumerate(hits)
        }

    async def give_back(self, db: AsyncSession, hits: Counter[Hit]) -> None:
        now = time.time()
        pipe = self.client.pipeline(transaction=False)
        for hit, n in hits.items():
            pipe.decrby(self._name(hit, (math.floor(now / hit[0].seconds) + 1) * hit[0].seconds), n)
        try:
            await pipe.execute()
        except redis.RedisError as exc:  # a refund lost: the user waits a little longer
            log.warning("rate_limit_refund_lost error=%s", type(exc).__name__)

    @staticmethod
    def _name(hit: Hit, window_end: int) -> str:
        return f"afterhours:rate:{hit[0].name}:{hit[1]}:{window_end}"

    async def pass_once(self, db: AsyncSession, limit: Limit, key: str) -> bool:
        name = f"afterhours:throttle:{limit.name}:{key}"
        try:
            return bool(await self.client.set(name, 1, nx=True, px=limit.seconds * 1000))
        except redis.RedisError as exc:
            log.warning("rate_limit_fallback store=postgres error=%s", type(exc).__name__)
            return await self.fallback.pass_once(db, limit, key)

    async def aclose(self) -> None:
        await self.client.aclose()


def rate_limited(what: str, retry_after: int) -> AppError:
    """429 RATE_LIMITED with the seconds to wait: in the text, in Retry-After and in an ack's
    `retryAfter`."""
    return AppError(
        "RATE_LIMITED",
        f"Too many {what}; try again in {retry_after} s",
        status=429,
        headers={"Retry-After": str(retry_after)},
        retry_after=retry_after,
    )


class Limiter:
    """The shared limits and where they are counted (made once per process, in app and worker)."""

    def __init__(self, limits: Limits, store: Store) -> None:
        self.limits = limits
        self.store = store

    @classmethod
    def from_settings(cls, settings: Settings) -> "Limiter":
        postgres = PostgresStore()
        store: Store = RedisStore(settings.redis_url, postgres) if settings.redis_url else postgres
        return cls(Limits.from_settings(settings), store)

    async def take(self, db: AsyncSession, hits: Sequence[Hit]) -> list[int | None]:
        """Count each hit, in order: for each, None if it is within its limit, else the whole
        seconds until one would be. A refused hit counts too, if its transaction commits (a
        script that keeps trying stays refused).

        A sliding window, estimated from two fixed ones: the hits of the last `seconds` are the
        current window's plus the previous window's share that still overlaps it (rounded up),
        so a burst straddling a window's edge is still one burst."""
        if not hits:
            return []
        batch = Counter(hits)
        tallies = await self.store.add(db, batch)
        seen: Counter[Hit] = Counter()
        answers: list[int | None] = []
        for hit in hits:
            limit, tally = hit[0], tallies[hit]
            overlap = tally.left / limit.seconds  # of the previous window, still in the last W
            before = tally.current - batch[hit] + seen[hit]  # this key's hits counted before it
            seen[hit] += 1
            if math.ceil(tally.previous * overlap) + before < limit.hits:
                answers.append(None)
            elif before >= limit.hits:
                answers.append(max(1, math.ceil(tally.left)))  # wait for the window to end
            else:
                # Until enough of the previous window has slid out: previous * overlap must
                # come down to what the current window leaves.
                room = (limit.hits - before - 1) / tally.previous
                answers.append(max(1, math.ceil(tally.left - room * limit.seconds)))
        return answers

    async def give_back(self, db: AsyncSession, hits: Sequence[Hit]) -> None:
        """Uncount hits that turned out to be no new work (a resend of a stored message)."""
        if hits:
            await self.store.give_back(db, Counter(hits))

    async def throttle(self, db: AsyncSession, limit: Limit, key: str) -> bool:
        """Whether this hit passes: one per `limit.seconds` since the last that passed, checked
        and marked in one step (a burst lets exactly one through)."""
        return await self.store.pass_once(db, limit, key)

    async def aclose(self) -> None:
        if isinstance(self.store, RedisStore):
            await self.store.aclose()


def counted(what: str, *names: str) -> Any:
    """A route dependency counting the request against the caller's limits `names` (fields of
    Limits), after auth and validation; RATE_LIMITED past any of them."""

    async def count(
        request: Request, db: DB, identity: Annotated[Identity, Depends(premium_identity)]
    ) -> None:
        limiter: Limiter = request.app.state.limiter
        hits = [(getattr(limiter.limits, name), str(identity.user_id)) for name in names]
        waits = [w for w in await limiter.take(db, hits) if w is not None]
        if waits:
            log.info("rate_limited limits=%s user_id=%s", ",".join(names), identity.user_id)
            raise rate_limited(what, max(waits))

    return Depends(count)


async def delete_ended_windows(db: AsyncSession, limit: int) -> int:
    """Counts of windows that have ended, and throttles that have opened (retention)."""
    throttles = select(Throttle.name, Throttle.key).where(Throttle.until < func.now()).limit(limit)
    await db.execute(delete(Throttle).where(tuple_(Throttle.name, Throttle.key).in_(throttles)))
    batch = (
        select(RateCount.name, RateCount.key, RateCount.window_end)
        .where(RateCount.window_end < func.now())
        .limit(limit)
    )
    columns = tuple_(RateCount.name, RateCount.key, RateCount.window_end)
    result = await db.execute(delete(RateCount).where(columns.in_(batch)))
    return int(result.rowcount)  # type: ignore[attr-defined]


class SlidingWindow:
    """A per-process limit: at most `limit` hits per `window` seconds per key, on the monotonic
    clock (a limit about this process's real seconds; tests freezing the domain clock must not
    freeze it)."""

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

    def _drop_idle(self, now: float) -> None:
        idle = [k for k, hits in self.hits.items() if not hits or hits[-1] <= now - self.window]
        for key in idle:
            del self.hits[key]
