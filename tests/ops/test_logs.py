"""AFTERHOURS_LOG_FORMAT=json: every line `afterhours serve` logs is a JSON object, and every
line logged while handling a request carries that request's id."""

import json
from pathlib import Path
from typing import Any

import httpx

from afterhours.auth import TokenVerifier
from tests.support.clients import User
from tests.support.places import random_place
from tests.support.processes import logged, serve_process
from tests.support.server import fresh_database, settings_for
from tests.support.sessions import set_up


def lines_of(log: Path) -> list[dict[str, Any]]:
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert lines
    parsed = []
    for line in lines:
        entry = json.loads(line)  # every line, start-up and shutdown included
        assert isinstance(entry, dict), line
        assert {"time", "level", "logger", "message"} <= set(entry), line
        parsed.append(entry)
    return parsed


async def test_json_logs_are_one_object_a_line_and_name_the_request_on_each_of_its_lines(
    tmp_path: Path,
) -> None:
    log = tmp_path / "serve.log"
    with fresh_database("afterhours_json_logs") as url:
        settings = settings_for(url, tmp_path).model_copy(update={"log_format": "json"})
        user = User(TokenVerifier(settings), premium=True)
        given = "start-request-7f3a"
        async with (
            serve_process(settings, log=log) as (_, base),
            httpx.AsyncClient(base_url=base, timeout=10) as client,
        ):
            await set_up(client, user)
            lat, lon = random_place()
            r = await client.post(
                "/api/after-hours/session/start",
                json={"duration": 15, "latitude": lat, "longitude": lon},
                headers={**user.headers, "X-Request-Id": given},
            )
            assert r.status_code == 201, r.text
            session_id = r.json()["session"]["id"]
            r = await client.post("/api/after-hours/session/end", headers=user.headers)
            assert r.status_code == 200, r.text
            made = r.headers["X-Request-Id"]  # the service's own id for a request without one
            await logged(log, f"session_closed session_id={session_id}")
    entries = lines_of(log)
    started = [e for e in entries if e["message"].startswith("session_started")]
    assert [e["request_id"] for e in started] == [given]
    closed = [e for e in entries if e["message"].startswith("session_closed")]
    assert [e["request_id"] for e in closed] == [made]
    # Its access line too: everything logged for the request names it, not only errors.
    of_start = [e for e in entries if e["request_id"] == given]
    assert {e["logger"] for e in of_start} >= {"afterhours.sessions", "uvicorn.access"}
    assert all(e["request_id"] is None for e in entries if e["logger"] == "uvicorn.error")
    assert all(e["level"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"} for e in entries)
    assert all(e["time"].endswith("+00:00") for e in entries)
