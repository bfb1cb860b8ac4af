"""A standalone `afterhours worker` serves its own counters (AFTERHOURS_WORKER_METRICS_PORT):
the matches it made, its sweeps and its calls to the push gateway, by outcome."""

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from afterhours.auth import TokenVerifier
from tests.support.clients import User
from tests.support.gateway import SECRET, Gateway, push_gateway
from tests.support.metrics import Scrape, parse, scrape
from tests.support.places import random_place
from tests.support.processes import serve_process, worker_process
from tests.support.server import free_port, fresh_database, settings_for
from tests.support.sessions import go, set_up
from tests.support.waiting import until


@dataclass
class Layout:
    gateway: Gateway
    verifier: TokenVerifier
    client: httpx.AsyncClient  # `serve --no-worker`
    worker_metrics: str  # the worker's own metrics URL


@pytest.fixture
async def layout(tmp_path: Path) -> AsyncIterator[Layout]:
    with fresh_database("afterhours_worker_metrics") as url:
        async with AsyncExitStack() as stack:
            gateway = await stack.enter_async_context(push_gateway())
            port = free_port()
            settings = settings_for(url, tmp_path).model_copy(
                update={
                    "match_delay_start_seconds": 0.2,
                    "push_webhook_url": gateway.url,
                    "push_webhook_secret": SECRET,
                    "push_collapse_seconds": 0.2,
                    "push_retry_seconds": 0.2,
                    "worker_metrics_port": port,
                }
            )
            _, base = await stack.enter_async_context(serve_process(settings, with_worker=False))
            await stack.enter_async_context(worker_process(settings, log=tmp_path / "w.log"))
            client = await stack.enter_async_context(httpx.AsyncClient(base_url=base, timeout=10))
            yield Layout(
                gateway, TokenVerifier(settings), client, f"http://127.0.0.1:{port}/metrics"
            )


async def worker_scrape(layout: Layout) -> Scrape | None:
    """The worker's metrics, or None while it is not listening yet."""
    try:
        async with httpx.AsyncClient() as client:
            r = await client.get(layout.worker_metrics)
    except httpx.TransportError:
        return None
    assert r.status_code == 200
    return parse(r.text)


async def test_the_worker_counts_its_matches_sweeps_and_push_calls_by_outcome(
    layout: Layout,
) -> None:
    layout.gateway.script = [503]  # the first call fails and is retried; then 200s
    here = random_place()
    people = []
    for _ in range(2):
        user = User(layout.verifier, premium=True)
        user.place = here
        await set_up(layout.client, user)
        device = {"platform": "ios", "token": f"token-{user.id}"}
        r = await layout.client.put("/api/after-hours/devices", json=device, headers=user.headers)
        assert r.status_code == 200, r.text
        people.append(user)
    for user in people:
        await go(layout.client, user)  # neither has a socket: the match card goes by push
    for user in people:
        await layout.gateway.wait_for(user.id)

    seen: list[Scrape] = []

    async def counted() -> bool:
        metrics = await worker_scrape(layout)
        if metrics is None:
            return False
        seen.append(metrics)
        return (
            metrics.value("afterhours_push_calls_total", outcome="sent") >= 2
            and metrics.value("afterhours_push_calls_total", outcome="failed") >= 1
        )

    await until(counted, within=20, every=0.2)
    metrics = seen[-1]
    assert metrics.value("afterhours_matches_made_total") == 1
    assert metrics.value("afterhours_match_sweep_seconds_count", kind="attempt") >= 1
    assert metrics.value("afterhours_push_calls_total", outcome="refused") == 0
    # The serving process made no match and called no gateway; the queue it reads is shared.
    admin = User(layout.verifier, premium=False, admin=True)
    serving = await scrape(layout.client, admin.token)
    assert serving.value("afterhours_matches_made_total") == 0
    assert serving.value("afterhours_push_calls_total", outcome="sent") == 0
    assert serving.value("afterhours_workers_alive") == 1
    assert serving.value("afterhours_matches_open", status="pending") == 1
