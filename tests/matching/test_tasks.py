"""Match jobs: a pending match nobody answers in time is auto-declined."""

from tests.support.events import CLOSED, MATCH
from tests.support.matching import open_match


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
