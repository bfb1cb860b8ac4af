"""The match routes answer 404 to anyone outside the match, and 400 to a bad id."""

import asyncio

from tests.support.clients import assert_error
from tests.support.events import MATCH
from tests.support.places import random_place
from tests.support.sessions import go


async def test_others_get_404_for_a_match(client, person, connect, make_user) -> None:
    here = random_place()
    a, b = await person(place=here), await person(place=here)
    sa = await connect(a)
    await go(client, a)
    await go(client, b)
    match_id = (await sa.wait_for(MATCH))["id"]
    stranger = make_user()
    for method, path in [
        ("GET", f"/api/after-hours/matches/{match_id}"),
        ("POST", f"/api/after-hours/matches/{match_id}/accept"),
        ("POST", f"/api/after-hours/matches/{match_id}/decline"),
    ]:
        r = await client.request(method, path, headers=stranger.headers)
        assert_error(r, 404, "NOT_FOUND")
    r = await client.get("/api/after-hours/matches/not-a-uuid", headers=a.headers)
    assert_error(r, 400, "VALIDATION_ERROR")
    await asyncio.sleep(0)
