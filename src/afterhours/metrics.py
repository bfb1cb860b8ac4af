"""Every metric of this process, defined once: features count here where their thing happens.

These are per-process counts (matches this worker made, messages this server stored), kept in
prometheus_client's default registry. What is true across processes (sessions, the job queue)
is read from the database at scrape time instead (afterhours.ops), so two processes never
disagree about it. Docs: docs/operations.md, "Metrics".

A count that stands for a change in the database is taken only once that change has committed
(`count_on_commit`): a rolled-back sweep made no matches.
"""

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    start_http_server,
)
from prometheus_client.metrics_core import Metric
from sqlalchemy.ext.asyncio import AsyncSession

from afterhours.db import after_commit
from afterhours.settings import Settings

# No `<name>_created` series beside every counter and histogram: twice the series for a start
# time Prometheus does not need (it sees resets itself).
disable_created_metrics()  # type: ignore[no-untyped-call]

MATCHES_MADE = Counter("afterhours_matches_made", "Matches created (pending cards delivered)")
MESSAGES_STORED = Counter("afterhours_messages_stored", "Chat messages stored")
MESSAGES_REJECTED = Counter(
    "afterhours_messages_rejected", "Chat messages refused by the screen (MESSAGE_REJECTED)"
)
SOCKETS = Gauge("afterhours_sockets_connected", "Socket.IO connections open on this process")
EVENTS_FANNED_OUT = Counter(
    "afterhours_events_fanned_out", "Server events committed and handed to fan-out", ["event"]
)
PUSH_OUTCOMES = ("sent", "gone", "refused", "failed")
PUSH_CALLS = Counter(
    "afterhours_push_calls",
    "Calls to the push gateway: sent (2xx), gone (410, tokens dropped), refused (other 4xx: "
    "not retried), failed (5xx, 429, timeout: retried)",
    ["outcome"],
)
PUSHES_GIVEN_UP = Counter(
    "afterhours_pushes_given_up", "Pushes dropped after AFTERHOURS_PUSH_ATTEMPTS failed calls"
)
SWEEP_KINDS = ("shard", "attempt")
# Up to minutes: a shard sweep must stay well under AFTERHOURS_MATCH_SWEEP_SECONDS (30 s).
SWEEP_SECONDS = Histogram(
    "afterhours_match_sweep_seconds",
    "Duration of a committed matching sweep: one periodic shard, or one user's attempt",
    ["kind"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120),
)
HTTP_SECONDS = Histogram(
    "afterhours_http_request_duration_seconds",
    "HTTP request latency, by route template (never the raw path) and method",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
HTTP_REQUESTS = Counter(
    "afterhours_http_requests",
    "HTTP responses, by route template, method and status",
    ["route", "method", "status"],
)
UNMATCHED_ROUTE = "unmatched"  # the route label of a path no route knows (a 404)

# Series that exist from the start, at 0, so a rate() over them is defined before the first one.
for _outcome in PUSH_OUTCOMES:
    PUSH_CALLS.labels(_outcome)
for _kind in SWEEP_KINDS:
    SWEEP_SECONDS.labels(_kind)


def count_on_commit(db: AsyncSession, counter: Counter, amount: float = 1) -> None:
    """Add `amount` to `counter` once `db` commits (nothing if it rolls back)."""
    if amount <= 0:
        return

    async def count() -> None:
        counter.inc(amount)

    after_commit(db, count)


# The classic text format: every Prometheus (and the ops page's parser) reads it.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


@contextlib.contextmanager
def timed(histogram: Histogram) -> Iterator[None]:
    """Observe how long the block took, if it completed (a failed sweep committed nothing)."""
    started = time.perf_counter()
    yield
    histogram.observe(time.perf_counter() - started)


class _Scrape:
    def __init__(self, extra: Iterable[Metric]) -> None:
        self.extra = list(extra)

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()
        yield from self.extra


def exposition(extra: Iterable[Metric] = ()) -> bytes:
    """This process's metrics, and `extra` (read for this scrape), in the text format."""
    return generate_latest(_Scrape(extra))


def serve_worker_metrics(settings: Settings) -> Callable[[], None]:
    """For `afterhours worker` (no HTTP of its own): its counters on a port of their own, when
    AFTERHOURS_WORKER_METRICS_PORT is set; returns what stops serving them. Unauthenticated:
    keep it on a private address (AFTERHOURS_WORKER_METRICS_HOST, loopback by default)."""
    if settings.worker_metrics_port is None:
        return lambda: None
    server, thread = start_http_server(
        settings.worker_metrics_port, addr=settings.worker_metrics_host
    )

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop
