"""Who may call what: every operation in /openapi.json, called by each kind of caller.

Each operation has an entry naming the callers it lets through; a route added without one fails
here. Every operation gets a world of its own: a matched pair with an open chat (the
participant's partner is the subject of path ids), a report someone filed on the partner, and
one caller of each kind. A caller is turned away when the answer is 401, 403 or, for a match
they are not in, 404 NOT_FOUND; any other answer (2xx, a 409 for the match's state, ...) means
the call reached the rule it was for.
"""

import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from PIL import Image

from tests.support.chat import MakeChat
from tests.support.clients import User

ROLES = ("anonymous", "basic", "stranger", "participant", "banned", "admin")
EVERYONE = frozenset(ROLES)
SIGNED_IN = EVERYONE - {"anonymous"}
PREMIUM = frozenset({"stranger", "participant"})
PARTICIPANT = frozenset({"participant"})
ADMIN = frozenset({"admin"})
TURNED_AWAY = {"UNAUTHORIZED", "PREMIUM_REQUIRED", "FORBIDDEN", "USER_BANNED", "DEVICE_BANNED"}

ALLOWED: dict[str, frozenset[str]] = {
    "GET /health": EVERYONE,
    "GET /ready": EVERYONE,
    # A banned user still sees and deletes their own data, and drops their push tokens.
    "GET /api/profile": SIGNED_IN,
    "PUT /api/profile": SIGNED_IN,
    "DELETE /api/account": SIGNED_IN,
    "DELETE /api/after-hours/devices/{token}": SIGNED_IN,
    "GET /api/after-hours/profile": PREMIUM,
    "PUT /api/after-hours/profile": PREMIUM,
    "DELETE /api/after-hours/profile": PREMIUM,
    "PUT /api/after-hours/profile/photo": PREMIUM,
    "GET /api/after-hours/preferences": PREMIUM,
    "PUT /api/after-hours/preferences": PREMIUM,
    "POST /api/after-hours/session/start": PREMIUM,
    "POST /api/after-hours/session/end": PREMIUM,
    "POST /api/after-hours/session/extend": PREMIUM,
    "GET /api/after-hours/session": PREMIUM,
    "GET /api/after-hours/match": PREMIUM,
    "GET /api/after-hours/events": PREMIUM,
    "PUT /api/after-hours/devices": PREMIUM,
    "POST /api/after-hours/blocks": PREMIUM,
    "DELETE /api/after-hours/blocks/{user_id}": PREMIUM,
    "POST /api/after-hours/reports": PREMIUM,
    "GET /api/after-hours/matches/{match_id}": PARTICIPANT,
    "POST /api/after-hours/matches/{match_id}/accept": PARTICIPANT,
    "POST /api/after-hours/matches/{match_id}/decline": PARTICIPANT,
    "POST /api/after-hours/matches/{match_id}/save": PARTICIPANT,
    "POST /api/after-hours/matches/{match_id}/messages": PARTICIPANT,
    "GET /api/after-hours/matches/{match_id}/messages": PARTICIPANT,
    "GET /api/admin/reports": ADMIN,
    "GET /api/admin/reports/{report_id}": ADMIN,
    "POST /api/admin/reports/{report_id}/resolve": ADMIN,
    "POST /api/admin/reports/{report_id}/assign": ADMIN,
    "POST /api/admin/reports/{report_id}/escalate": ADMIN,
    "POST /api/admin/users/{user_id}/ban": ADMIN,
    "DELETE /api/admin/users/{user_id}/ban": ADMIN,
    "GET /api/admin/users/{user_id}": ADMIN,
}


def jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), "teal").save(buf, "JPEG")
    return buf.getvalue()


@dataclass
class World:
    match_id: str
    partner: User  # the participant's match, and the subject of user ids
    report_id: str
    token: str  # a push token every caller that may has registered

    def body(self, operation: str) -> dict[str, Any]:
        """A valid request for `operation`, so a caller let through reaches its rule."""
        json_bodies: dict[str, Any] = {
            "PUT /api/profile": {"name": "Ana", "birthDate": "1990-01-01", "gender": "woman"},
            "PUT /api/after-hours/profile": {"description": "hello"},
            "PUT /api/after-hours/preferences": {
                "seekingGenders": ["woman"],
                "minAge": 18,
                "maxAge": 99,
                "maxDistanceKm": 10,
            },
            "POST /api/after-hours/session/start": {
                "duration": 15,
                "latitude": 10.0,
                "longitude": 10.0,
            },
            "POST /api/after-hours/session/extend": {"additionalMinutes": 15},
            "POST /api/after-hours/matches/{match_id}/messages": {
                "content": "hi",
                "clientMessageId": "c-1",
            },
            "PUT /api/after-hours/devices": {"platform": "ios", "token": self.token},
            "POST /api/after-hours/blocks": {"blockedUserId": str(self.partner.id)},
            "POST /api/after-hours/reports": {
                "reportedUserId": str(self.partner.id),
                "category": "spam",
            },
            "POST /api/admin/reports/{report_id}/resolve": {"action": "dismiss"},
            "POST /api/admin/reports/{report_id}/escalate": {"note": "needs a second look"},
            "POST /api/admin/users/{user_id}/ban": {"reason": "spam"},
        }
        if operation == "PUT /api/after-hours/profile/photo":
            return {"content": jpeg()}
        if operation in json_bodies:
            return {"json": json_bodies[operation]}
        return {}

    def url(self, path: str) -> str:
        return (
            path.replace("{match_id}", self.match_id)
            .replace("{report_id}", self.report_id)
            .replace("{user_id}", str(self.partner.id))
            .replace("{token}", self.token)
        )


def operations(spec: dict[str, Any]) -> list[str]:
    return [
        f"{method.upper()} {path}"
        for path, ops in spec["paths"].items()
        for method in ops
        if method in {"get", "put", "post", "delete", "patch"}
    ]


async def test_every_operation_lets_through_exactly_its_callers(
    client: httpx.AsyncClient,
    make_chat: MakeChat,
    make_user: Callable[..., User],
) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert set(operations(spec)) == set(ALLOWED), "every operation needs an entry in ALLOWED"

    async def profiled(user: User) -> User:
        base = {"name": "Caller", "birthDate": "1990-01-01", "gender": "man"}
        assert (await client.put("/api/profile", json=base, headers=user.headers)).is_success
        return user

    async def callers(participant: User, admin: User) -> dict[str, dict[str, str]]:
        """A fresh caller of each kind but the participant, who is the world's own."""
        banned = await profiled(make_user(premium=True))
        r = await client.post(
            f"/api/admin/users/{banned.id}/ban", json={"reason": "test"}, headers=admin.headers
        )
        assert r.status_code == 200, r.text
        return {
            "anonymous": {},
            "basic": (await profiled(make_user(premium=False))).headers,
            "stranger": (await profiled(make_user(premium=True))).headers,
            "participant": participant.headers,
            "banned": banned.headers,
            "admin": admin.headers,
        }

    async def prepare(operation: str, world: World, headers: dict[str, str]) -> None:
        """What a call needs to have been done first by the same caller."""
        steps: dict[str, Callable[[], Awaitable[httpx.Response]]] = {
            "DELETE /api/after-hours/blocks/{user_id}": lambda: client.post(
                "/api/after-hours/blocks",
                json={"blockedUserId": str(world.partner.id)},
                headers=headers,
            ),
            "DELETE /api/after-hours/devices/{token}": lambda: client.put(
                "/api/after-hours/devices",
                json={"platform": "ios", "token": world.token},
                headers=headers,
            ),
        }
        if operation in steps:
            await steps[operation]()

    let_through: dict[str, set[str]] = {}
    for operation in sorted(ALLOWED):
        method, path = operation.split(" ", 1)
        chat = await make_chat()
        # Someone else reports the partner (a report blocks, which would close the match).
        reporter = await profiled(make_user(premium=True))
        r = await client.post(
            "/api/after-hours/reports",
            json={"reportedUserId": str(chat.b.id), "category": "spam"},
            headers=reporter.headers,
        )
        assert r.status_code == 201, r.text
        admin = make_user(premium=False, admin=True)
        world = World(chat.match_id, chat.b, r.json()["report"]["id"], f"tok-{chat.match_id}")
        let_through[operation] = set()
        for role, headers in (await callers(chat.a, admin)).items():
            await prepare(operation, world, headers)
            if operation == "PUT /api/after-hours/profile/photo":
                headers = {**headers, "Content-Type": "image/jpeg"}
            r = await client.request(
                method, world.url(path), **world.body(operation), headers=headers
            )
            assert r.status_code < 500, f"{operation} as {role}: {r.text}"
            code = r.json().get("code") if r.status_code >= 400 else None
            turned_away = code in TURNED_AWAY or (code == "NOT_FOUND" and "{match_id}" in path)
            if not turned_away:
                let_through[operation].add(role)
    wrong = {
        operation: {"allowed": sorted(ALLOWED[operation]), "let through": sorted(roles)}
        for operation, roles in let_through.items()
        if roles != ALLOWED[operation]
    }
    assert not wrong, wrong
