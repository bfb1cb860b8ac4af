"""Who is paired and who is not, and what closes a match: the matching rules end to end."""

import httpx

from tests.support.clients import assert_error
from tests.support.events import CLOSED, MATCH, NO_MATCHES
from tests.support.matching import open_match
from tests.support.places import km_north, random_place
from tests.support.sessions import go


async def expect_no_pair(client: httpx.AsyncClient, connect, a, b) -> None:
    """Both attempts ran (each heard no_matches) and nobody was paired."""
    sa, sb = await connect(a), await connect(b)
    await go(client, a)
    await sa.wait_for(NO_MATCHES)
    await go(client, b)
    await sb.wait_for(NO_MATCHES)
    assert await open_match(client, a) is None
    assert await open_match(client, b) is None
    assert sa.named(MATCH) == [] and sb.named(MATCH) == []


async def test_gender_not_sought_is_no_match(client, person, connect) -> None:
    here = random_place()
    a = await person("man", seeking=["woman"], place=here)
    b = await person("man", seeking=["man"], place=here)  # b would, a would not
    await expect_no_pair(client, connect, a, b)


async def test_age_outside_range_is_no_match(client, person, connect) -> None:
    here = random_place()
    a = await person(birth_date="1995-01-01", min_age=18, max_age=25, place=here)
    b = await person(birth_date="1980-01-01", place=here)
    await expect_no_pair(client, connect, a, b)


async def test_beyond_max_distance_is_no_match(client, person, connect) -> None:
    here = random_place()
    a = await person(max_km=10, place=here)
    b = await person(max_km=100, place=km_north(here, 20))
    await expect_no_pair(client, connect, a, b)


async def test_blocked_is_no_match(client, person, connect) -> None:
    here = random_place()
    a = await person(place=here)
    b = await person(place=here)
    r = await client.post("/api/after-hours/blocks", json={"userId": str(b.id)}, headers=a.headers)
    assert r.status_code == 201
    await expect_no_pair(client, connect, b, a)  # the block works both ways


async def test_declined_pair_is_not_matched_again(client, matched) -> None:
    pair = await matched()
    a, b, sa, sb = pair.a, pair.b, pair.sa, pair.sb
    match = sa.named(MATCH)[0]
    r = await client.post(f"/api/after-hours/matches/{match['id']}/decline", headers=b.headers)
    assert r.status_code == 200 and r.json()["match"]["status"] == "declined"
    await sa.wait_for(CLOSED)
    # After the decline both go back to waiting; their next attempts find nobody.
    await sa.wait_for(NO_MATCHES)
    await sb.wait_for(NO_MATCHES)
    for user in (a, b):
        await client.post("/api/after-hours/session/end", headers=user.headers)
    await go(client, a)
    await sa.wait_for(NO_MATCHES, count=2)
    await go(client, b)
    await sb.wait_for(NO_MATCHES, count=2)
    assert len(sa.named(MATCH)) == 1 and await open_match(client, a) is None


async def test_user_with_an_open_match_is_not_matched_again(client, person, connect) -> None:
    here = random_place()
    a, b, c = [await person(place=here) for _ in range(3)]
    sa, sc = await connect(a), await connect(c)
    await go(client, a)
    await go(client, b)
    await sa.wait_for(MATCH)
    await go(client, c)
    nothing = await sc.wait_for(NO_MATCHES)
    assert nothing["activeUsersNearby"] == 0  # a and b could be, but two is told as 0
    assert sc.named(MATCH) == []


async def test_third_user_waits_then_is_matched_after_a_decline(client, person, connect) -> None:
    here = random_place()
    a, b, c = [await person(place=here) for _ in range(3)]
    sa, sb, sc = await connect(a), await connect(b), await connect(c)
    await go(client, a)
    await go(client, b)
    first = await sa.wait_for(MATCH)
    await sb.wait_for(MATCH)
    await go(client, c)
    await sc.wait_for(NO_MATCHES)
    await client.post(f"/api/after-hours/matches/{first['id']}/decline", headers=a.headers)
    second = await sc.wait_for(MATCH)
    assert second["profile"]["userId"] in {str(a.id), str(b.id)}
    assert second["id"] != first["id"]


async def test_decline_closes_for_both_and_then_match_is_not_open(client, matched) -> None:
    pair = await matched()
    a, b, sa, sb, match_id = pair.a, pair.b, pair.sa, pair.sb, pair.match_id
    await client.post(f"/api/after-hours/matches/{match_id}/decline", headers=a.headers)
    for s in (sa, sb):
        closed = await s.wait_for(CLOSED)
        assert closed["matchId"] == match_id and closed["status"] == "declined"
    for path in ("accept", "decline"):
        r = await client.post(f"/api/after-hours/matches/{match_id}/{path}", headers=b.headers)
        assert_error(r, 409, "MATCH_NOT_OPEN")


async def test_session_end_closes_the_match_as_ended(client, matched) -> None:
    pair = await matched()
    a, b, sa, sb, match_id = pair.a, pair.b, pair.sa, pair.sb, pair.match_id
    await client.post("/api/after-hours/session/end", headers=b.headers)
    for s in (sa, sb):
        closed = await s.wait_for(CLOSED)
        assert (closed["matchId"], closed["status"]) == (match_id, "ended")
    r = await client.get(f"/api/after-hours/matches/{match_id}", headers=a.headers)
    assert r.json()["match"]["status"] == "ended"


async def test_session_in_its_last_two_minutes_is_not_matched(
    client, person, connect, sql, base_settings
) -> None:
    here = random_place()
    a, b = await person(place=here), await person(place=here)
    sa, sb = await connect(a), await connect(b)
    session = await go(client, a, duration=15)
    await sa.wait_for(NO_MATCHES)
    # Into its last two minutes (here the last second): 1.9 session-minutes left from now on.
    left = 1.9 * base_settings.session_minute_seconds
    [(expires_at,)] = await sql(
        "UPDATE after_hours_sessions SET expires_at = now() + %s * interval '1 second'"
        " WHERE id = %s AND ended_at IS NULL RETURNING expires_at",
        left,
        session["id"],
    )
    await go(client, b)
    nothing = await sb.wait_for(NO_MATCHES)
    assert sa.named(MATCH) == [] and sb.named(MATCH) == []
    assert nothing["activeUsersNearby"] == 0  # a's session no longer counts as matchable
    # b's attempt ran while a's session was still open, so the cut-off is what left a out
    # (had the attempt come after a's time was up, the test would show nothing).
    [(attempted_at,)] = await sql(
        "SELECT created_at FROM user_events WHERE user_id = %s AND event = %s", b.id, NO_MATCHES
    )
    assert attempted_at < expires_at
    assert await open_match(client, a) is None and await open_match(client, b) is None
