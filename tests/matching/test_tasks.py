"""Match jobs: a pending match nobody answers in time is auto-declined; the periodic sweep
runs shard by shard."""

import re
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.support.clients import User, socket_of
from tests.support.events import CLOSED, MATCH
from tests.support.matching import open_match
from tests.support.processes import serve_process
from tests.support.server import settings_for
from tests.support.sessions import go, set_up


async def test_pending_match_auto_declines(client, matched) -> None:
    pair = await matched()
    a, sa, sb = pair.a, pair.sa, pair.sb
    match = sa.named(MATCH)[0]
    await client.post(f"/api/after-hours/matches/{match['id']}/accept", headers=a.headers)
    closed = await sb.wait_for(CLOSED, within=10)
    assert closed == {
        "matchId": match["id"],
        "status": "expired",
        "reason": "timeout",
        "seq": closed["seq"],
    }
    assert (await sa.wait_for(CLOSED))["status"] == "expired"
    assert await open_match(client, a) is None


async def test_the_periodic_sweep_sweeps_each_shard_as_a_job_under_its_own_lock(
    isolated_url: str, tmp_path: Path, make_user: Callable[..., User]
) -> None:
    # Start attempts come too late to matter: only the periodic sweep pairs these people.
    settings = settings_for(isolated_url, tmp_path).model_copy(
        update={
            "match_delay_start_seconds": 600,
            "match_sweep_seconds": 0.5,
            "match_shard_users": 2,
        }
    )
    towns = [(10.5, 20.5), (10.5, 30.5), (-30.5, 150.5)]  # far apart: one shard each
    log = tmp_path / "serve.log"
    async with (
        serve_process(settings, log=log) as (_, base),
        httpx.AsyncClient(base_url=base) as client,
    ):
        phones = []
        for town in towns:
            for _ in range(2):
                user = make_user()
                user.place = town
                await set_up(client, user)
                phones.append(await socket_of(base, user))
                await go(client, user)
        for phone in phones:
            await phone.wait_for(MATCH)
            await phone.client.disconnect()
    # One sweep job per shard, each pairing its own town.
    swept = re.findall(r"match_sweep shard=(\S+) waiting=2 pairs=1", log.read_text())
    assert len(set(swept)) == len(towns) and "-" not in swept
