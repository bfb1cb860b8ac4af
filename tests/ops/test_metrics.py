"""GET /metrics: who may scrape it, the gauges read from the database, and each counter moved
by doing what it counts (on the shared server with its worker: counts only go up, by at least
what the test did)."""

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from afterhours.auth import TokenVerifier
from afterhours.settings import Settings
from tests.conftest import sql_on
from tests.support.chat import MakeChat, Sql, send
from tests.support.clients import User, assert_error, socket_of
from tests.support.matching import matchable_user, open_match, sweep_once
from tests.support.metrics import Scrape, scrape
from tests.support.places import random_place
from tests.support.server import fresh_database, running_server, settings_for
from tests.support.sessions import go, lapse
from tests.support.waiting import until

METRICS_TOKEN = "scraper-token-" + "m" * 32

# Every family /metrics shows, whatever has happened yet.
FAMILIES = {
    "afterhours_database_up",
    "afterhours_sessions_active",
    "afterhours_users_waiting",
    "afterhours_matches_open",
    "afterhours_job_queue_depth",
    "afterhours_job_queue_scheduled",
    "afterhours_jobs_running",
    "afterhours_job_queue_lag_seconds",
    "afterhours_workers_alive",
    "afterhours_matches_made",
    "afterhours_messages_stored",
    "afterhours_messages_rejected",
    "afterhours_sockets_connected",
    "afterhours_events_fanned_out",
    "afterhours_push_calls",
    "afterhours_pushes_given_up",
    "afterhours_match_sweep_seconds",
    "afterhours_http_request_duration_seconds",
    "afterhours_http_requests",
}


@pytest.fixture
def admin(make_user: Callable[..., User]) -> User:
    return make_user(admin=True)


async def metrics_of(client: httpx.AsyncClient, admin: User) -> Scrape:
    return await scrape(client, admin.token)


# --- who may scrape -------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def guarded_url(base_settings: Settings) -> AsyncIterator[str]:
    """A server (no worker) of the shared database with AFTERHOURS_METRICS_TOKEN set."""
    settings = base_settings.model_copy(update={"metrics_token": METRICS_TOKEN})
    async with running_server(settings, with_worker=False) as url:
        yield url


async def test_metrics_without_a_token_or_with_a_bad_one_are_401_unauthorized(
    guarded_url: str,
) -> None:
    async with httpx.AsyncClient(base_url=guarded_url) as client:
        assert_error(await client.get("/metrics"), 401, "UNAUTHORIZED")
        for header in ("Bearer nope", f"Bearer {METRICS_TOKEN}x", f"Basic {METRICS_TOKEN}"):
            r = await client.get("/metrics", headers={"Authorization": header})
            assert_error(r, 401, "UNAUTHORIZED")


async def test_metrics_take_the_metrics_token_or_an_admin_jwt_and_a_user_jwt_is_403(
    guarded_url: str, make_user: Callable[..., User]
) -> None:
    async with httpx.AsyncClient(base_url=guarded_url) as client:
        assert (await scrape(client, METRICS_TOKEN)).families >= FAMILIES
        assert (await scrape(client, make_user(admin=True).token)).families >= FAMILIES
        for user in (make_user(premium=True), make_user(premium=False)):
            r = await client.get("/metrics", headers=user.headers)
            assert_error(r, 403, "FORBIDDEN")


async def test_without_a_metrics_token_set_only_admins_may_scrape(
    client: httpx.AsyncClient, make_user: Callable[..., User], admin: User
) -> None:
    assert (await metrics_of(client, admin)).value("afterhours_database_up") == 1
    assert_error(await client.get("/metrics", headers=make_user().headers), 403, "FORBIDDEN")
    r = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert_error(r, 401, "UNAUTHORIZED")
    # An operator's route, not the API's: not in its documentation.
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not any(path.startswith(("/metrics", "/admin/ops", "/admin/assets")) for path in paths)


# --- gauges read from the database: a server and a database of the test's own, no worker ----


@pytest.fixture
async def own(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Settings, Sql]]:
    """A server with no worker on a fresh database: the gauges are exactly this test's doing."""
    with fresh_database("afterhours_metrics") as url:
        settings = settings_for(url, tmp_path).model_copy(update={"match_delay_start_seconds": 0.0})
        async with (
            running_server(settings, with_worker=False) as base,
            httpx.AsyncClient(base_url=base, timeout=10) as client,
            sql_on(url) as sql,
        ):
            yield client, settings, sql


async def test_gauges_follow_sessions_matches_and_the_job_queue_as_of_now(
    own: tuple[httpx.AsyncClient, Settings, Sql],
) -> None:
    client, settings, sql = own
    verifier = TokenVerifier(settings)
    admin = User(verifier, premium=False, admin=True)
    before = await metrics_of(client, admin)
    assert before.value("afterhours_sessions_active") == 0
    assert before.value("afterhours_users_waiting") == 0
    assert before.value("afterhours_matches_open", status="pending") == 0
    assert before.value("afterhours_matches_open", status="active") == 0
    assert before.value("afterhours_job_queue_depth", task="matching:attempt") == 0
    assert before.value("afterhours_workers_alive") == 0

    here = random_place()
    a, b = [await matchable_user(client, User(verifier, premium=True), here) for _ in range(2)]
    for user in (a, b):
        await go(client, user)
    started = await metrics_of(client, admin)
    assert started.value("afterhours_sessions_active") == 2
    assert started.value("afterhours_users_waiting") == 2
    # Each start deferred an attempt, due at once; no worker takes it, so it waits and ages.
    assert started.value("afterhours_job_queue_depth", task="matching:attempt") == 2
    assert started.value("afterhours_job_queue_scheduled", task="sessions:expire") == 2

    async def aged() -> bool:
        lag = (await metrics_of(client, admin)).value(
            "afterhours_job_queue_lag_seconds", task="matching:attempt"
        )
        return lag >= 0.3

    await until(aged, within=5)

    made = started.value("afterhours_matches_made_total")
    await sweep_once(settings, focus_user=a.id)  # in this process, as a worker would run it
    matched = await metrics_of(client, admin)
    assert matched.value("afterhours_users_waiting") == 0
    assert matched.value("afterhours_matches_open", status="pending") == 1
    assert matched.value("afterhours_matches_made_total") >= made + 1
    match = await open_match(client, a)
    assert match is not None
    for user in (a, b):
        r = await client.post(
            f"/api/after-hours/matches/{match['id']}/accept", headers=user.headers
        )
        assert r.status_code == 200, r.text
    accepted = await metrics_of(client, admin)
    assert accepted.value("afterhours_matches_open", status="pending") == 0
    assert accepted.value("afterhours_matches_open", status="active") == 1

    # b's time runs out with no job run: b is no longer in session, nor is the match open.
    await lapse(sql, b)
    lapsed = await metrics_of(client, admin)
    assert lapsed.value("afterhours_sessions_active") == 1
    assert lapsed.value("afterhours_matches_open", status="active") == 0


# --- counters of this process, moved by doing what they count ------------------------------


async def test_a_chat_counts_a_match_made_its_events_and_the_sweep_that_made_it(
    client: httpx.AsyncClient, admin: User, make_chat: MakeChat
) -> None:
    before = await metrics_of(client, admin)
    chat = await make_chat()
    after = await metrics_of(client, admin)
    assert (
        after.value("afterhours_matches_made_total")
        >= before.value("afterhours_matches_made_total") + 1
    )
    for event, at_least in (("after_hours:match", 2), ("after_hours:chat_open", 2)):
        name = "afterhours_events_fanned_out_total"
        assert after.value(name, event=event) >= before.value(name, event=event) + at_least

    # Made by the user's attempt or by a periodic shard sweep, whichever came first; a sweep
    # is timed once its job is over, which may be just after its events arrived.
    def sweeps(scrape: Scrape) -> float:
        name = "afterhours_match_sweep_seconds_count"
        return scrape.value(name, kind="attempt") + scrape.value(name, kind="shard")

    async def swept() -> bool:
        return sweeps(await metrics_of(client, admin)) >= sweeps(before) + 1

    await until(swept, within=10)
    await chat.sa.client.disconnect()
    await chat.sb.client.disconnect()


async def test_messages_stored_and_rejected_are_counted(
    client: httpx.AsyncClient, admin: User, make_chat: MakeChat
) -> None:
    chat = await make_chat()
    before = await metrics_of(client, admin)
    assert (await send(chat.sa, chat.match_id, "hello there"))["ok"] is True
    r = await client.post(
        chat.path("/messages"), json={"content": "and again"}, headers=chat.b.headers
    )
    assert r.status_code == 201, r.text
    # A word of the shipped screen list (chat/screen.txt).
    refused = await send(chat.sa, chat.match_id, "please send me money")
    assert refused["ok"] is False and refused["error"]["code"] == "MESSAGE_REJECTED"
    after = await metrics_of(client, admin)
    stored, rejected = "afterhours_messages_stored_total", "afterhours_messages_rejected_total"
    assert after.value(stored) >= before.value(stored) + 2
    assert after.value(rejected) >= before.value(rejected) + 1


async def test_sockets_are_counted_while_connected(
    client: httpx.AsyncClient, base_url: str, admin: User, make_user: Callable[..., User]
) -> None:
    gauge = "afterhours_sockets_connected"
    before = (await metrics_of(client, admin)).value(gauge)
    sockets = [await socket_of(base_url, make_user()) for _ in range(2)]
    assert (await metrics_of(client, admin)).value(gauge) >= before + 2
    for socket in sockets:
        await socket.client.disconnect()

    async def gone() -> bool:
        return (await metrics_of(client, admin)).value(gauge) <= before

    await until(gone, within=5)


async def test_http_latency_is_labelled_by_route_template_never_the_raw_path(
    client: httpx.AsyncClient, admin: User, make_user: Callable[..., User]
) -> None:
    user = make_user()
    template = "/api/after-hours/matches/{match_id}"
    count, seen = "afterhours_http_request_duration_seconds_count", "afterhours_http_requests_total"
    before = await metrics_of(client, admin)
    for _ in range(3):
        match_id = str(uuid.uuid4())
        r = await client.get(f"/api/after-hours/matches/{match_id}", headers=user.headers)
        assert r.status_code == 404
    r = await client.get("/no/such/route/" + match_id)
    assert_error(r, 404, "NOT_FOUND")
    after = await metrics_of(client, admin)
    assert (
        after.value(count, route=template, method="GET")
        >= before.value(count, route=template, method="GET") + 3
    )
    assert after.value(seen, route=template, method="GET", status="404") >= 3
    assert after.value(seen, route="unmatched", method="GET", status="404") >= 1
    routes = {labels["route"] for labels in after.labels_of(count)}
    assert match_id not in " ".join(routes)
    assert all(route == "unmatched" or route.startswith("/") for route in routes)
