"""A follow-up attempt waiting to run (after a decline) holds up nobody else's matching. On a
service of this module's own, whose decline delay is far longer than the test."""

import time
from collections.abc import AsyncIterator, Iterator

import pytest

from afterhours.auth import TokenVerifier
from afterhours.settings import Settings
from tests.support.events import MATCH
from tests.support.processes import serve_process
from tests.support.server import fresh_database, settings_for
from tests.support.sessions import go

START_DELAY = 0.5
SWEEP = 1.0


@pytest.fixture(scope="module")
def base_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with fresh_database("afterhours_follow_up") as url:
        yield settings_for(url, tmp_path_factory.mktemp("follow-up")).model_copy(
            update={
                "match_delay_start_seconds": START_DELAY,
                "match_sweep_seconds": SWEEP,
                "match_delay_decline_seconds": 600.0,
            }
        )


@pytest.fixture(scope="module")
def verifier(base_settings: Settings) -> TokenVerifier:
    return TokenVerifier(base_settings)


@pytest.fixture(scope="module")
async def base_url(base_settings: Settings) -> AsyncIterator[str]:
    async with serve_process(base_settings) as (_, url):
        yield url


async def test_a_pending_follow_up_attempt_does_not_delay_a_new_pair_elsewhere(
    client, matched, person, connect
) -> None:
    declined = await matched()
    r = await client.post(declined.path("/decline"), headers=declined.a.headers)
    assert r.status_code == 200, r.text
    # Both of them now have an attempt due in ten minutes.

    here = declined.a.place  # a fresh spot of its own
    c, d = await person(place=(-here[0], -here[1])), await person(place=(-here[0], -here[1]))
    sc, sd = await connect(c), await connect(d)
    started = time.monotonic()
    await go(client, c)
    await go(client, d)
    within = START_DELAY + SWEEP + 1.5
    card = await sc.wait_for(MATCH, within=within)
    assert (await sd.wait_for(MATCH, within=within))["id"] == card["id"]
    assert time.monotonic() - started <= within
