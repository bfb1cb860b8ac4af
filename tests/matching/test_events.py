"""What each phone hears of a match: the card (exactly its wire form, and replayed as stored),
the accepts and the chat opening."""

import math

from afterhours import geo
from afterhours.matching.schemas import MatchDelivered
from tests.support.events import MATCH
from tests.support.matching import open_match
from tests.support.places import km_north, random_place
from tests.support.sessions import go


async def test_mutual_match_delivers_each_the_others_card(client, person, connect) -> None:
    here = random_place()
    a = await person("man", seeking=["woman"], place=here)
    b = await person("woman", seeking=["man"], birth_date="1990-05-05", place=km_north(here, 5))
    sa, sb = await connect(a), await connect(b)
    await go(client, a)
    await go(client, b)
    card_a = await sa.wait_for(MATCH)
    card_b = await sb.wait_for(MATCH)
    assert card_a["id"] == card_b["id"]
    assert card_a["status"] == "pending"
    assert card_a["profile"]["userId"] == str(b.id)
    assert card_b["profile"]["userId"] == str(a.id)
    assert card_b["profile"]["age"] >= 30 and card_a["profile"]["age"] >= 35
    for card in (card_a, card_b):
        # The sweep writes the wire form by hand; it must be exactly the event model's.
        wire = {k: v for k, v in card.items() if k != "seq"}
        assert MatchDelivered.model_validate(wire).model_dump(mode="json", by_alias=True) == wire
        km = card["profile"]["distanceKm"]
        # 5 km apart, each public point up to MAX_ERROR_KM (≈ 2.2 km) from its person.
        assert isinstance(km, int) and 1 <= km <= math.ceil(5 + 2 * geo.MAX_ERROR_KM)
        assert set(card) >= {
            "id",
            "status",
            "createdAt",
            "autoDeclineAt",
            "acceptedByMe",
            "acceptedByThem",
            "savedByMe",
            "savedByThem",
            "permanentMatchId",
            "profile",
            "seq",
        }
        assert card["acceptedByMe"] is card["acceptedByThem"] is False
    # A reconnecting phone gets the same open match over REST.
    current = await open_match(client, a)
    assert current is not None and current["id"] == card_a["id"]
    assert current["profile"]["name"] == card_a["profile"]["name"]


async def test_accepts_open_the_chat(client, matched) -> None:
    pair = await matched()
    a, b, sa, sb, match_id = pair.a, pair.b, pair.sa, pair.sb, pair.match_id
    r = await client.post(f"/api/after-hours/matches/{match_id}/accept", headers=a.headers)
    assert r.status_code == 200
    assert r.json()["match"]["acceptedByMe"] is True
    assert r.json()["match"]["status"] == "pending"
    assert (await sa.wait_for("after_hours:match_accepted")) == {
        "matchId": match_id,
        "by": "me",
        "seq": sa.named("after_hours:match_accepted")[0]["seq"],
    }
    assert (await sb.wait_for("after_hours:match_accepted"))["by"] == "them"
    r = await client.post(f"/api/after-hours/matches/{match_id}/accept", headers=b.headers)
    assert r.json()["match"]["status"] == "active"
    assert r.json()["match"]["acceptedByThem"] is True
    assert (await sa.wait_for("after_hours:chat_open"))["matchId"] == match_id
    assert (await sb.wait_for("after_hours:chat_open"))["matchId"] == match_id
    # Accepting again changes nothing and sends nothing.
    await client.post(f"/api/after-hours/matches/{match_id}/accept", headers=b.headers)
    r = await client.get(f"/api/after-hours/matches/{match_id}", headers=b.headers)
    assert r.json()["match"]["status"] == "active"
    assert len(sb.named("after_hours:match_accepted")) == 2


async def test_card_text_survives_storage_and_replay_exactly(
    client, person, connect, make_user
) -> None:
    here = random_place()
    a, b = await person(place=here), await person(place=here)
    # A name is one line; a description may have line breaks.
    odd = 'Zoë \\ "q" 🙂 \\n'
    lines = 'Zoë \\ "q"\n 🙂 \\n'
    r = await client.put(
        "/api/profile",
        json={"name": odd, "birthDate": "1995-01-01", "gender": "nonbinary"},
        headers=b.headers,
    )
    assert r.status_code == 200
    r = await client.put("/api/after-hours/profile", json={"description": lines}, headers=b.headers)
    assert r.status_code == 200
    sa = await connect(a)
    await go(client, a)
    await go(client, b)
    card = await sa.wait_for(MATCH)
    assert card["profile"]["name"] == odd
    assert card["profile"]["description"] == lines
    events = (await client.get("/api/after-hours/events", headers=a.headers)).json()["events"]
    stored = next(e for e in events if e["event"] == MATCH)
    assert stored["data"] == card
