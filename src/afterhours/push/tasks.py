"""The job that sends a pending push, and tries again while the gateway fails."""

import logging
import uuid
from datetime import timedelta
from typing import Any

import httpx
import procrastinate

from afterhours import clock, jobs, metrics, presence
from afterhours.jobs import runtime
from afterhours.push import service

log = logging.getLogger("afterhours.push")

blueprint = procrastinate.Blueprint()


@blueprint.task(
    name="send", queue=jobs.PUSH_QUEUE, pass_context=True, retry=jobs.RETRY_AFTER_OUTAGE
)
async def send(
    context: procrastinate.JobContext,
    user_id: str,
    pending: dict[str, Any] | None = None,
    attempt: int = 0,
) -> None:
    """Send the user's pending push, unless they have come back to a socket meanwhile: their
    app then has the events already.

    The first run only takes the pending push and hands it, in the same transaction, to a job
    of its own (`pending` given): from then on the push lives in a job's arguments, so a failure
    anywhere below (a database outage included: the job is retried) cannot lose it. A phone may
    then, rarely, get one push twice; it dedupes by seq."""
    rt = runtime(context)
    user = uuid.UUID(user_id)
    settings = rt.settings
    if pending is None:
        async with rt.db.transaction() as db:
            taken = await service.take_pending(db, user)
            if taken is not None:
                await jobs.defer(db, "push:send", user_id=user_id, pending=taken)
        return
    async with rt.db.transaction() as db:
        if await presence.online(db, [user], settings.presence_heartbeat_seconds):
            log.info("push_skipped user=%s seq=%s reason=online", user, pending["seq"])
            return
        devices = await service.devices_of(db, user)
    if not devices:
        log.info("push_skipped user=%s seq=%s reason=no_devices", user, pending["seq"])
        return
    assert rt.push is not None  # only workers with push on take the push queue
    what = f"user={user} event={pending['event']} seq={pending['seq']} attempt={attempt + 1}"
    try:
        response: httpx.Response | None = await rt.push.post(
            service.push_body(user, pending, devices)
        )
    except httpx.TransportError as exc:
        response, failure = None, type(exc).__name__
    if response is not None:
        status = response.status_code
        if status < 300 or status == 410:
            metrics.PUSH_CALLS.labels("sent" if status < 300 else "gone").inc()
            # 410: every token of this call is dead; a 2xx may name some that are.
            dead = [d["token"] for d in devices] if status == 410 else _invalid_tokens(response)
            if dead:
                async with rt.db.transaction() as db:
                    await service.forget_tokens(db, dead)
            log.info("push_sent %s status=%d dead_tokens=%d", what, status, len(dead))
            return
        if status < 500 and status != 429:
            metrics.PUSH_CALLS.labels("refused").inc()
            log.error("push_refused %s status=%d", what, status)
            return
        failure = f"status_{status}"
    metrics.PUSH_CALLS.labels("failed").inc()
    if attempt + 1 >= settings.push_attempts:
        metrics.PUSHES_GIVEN_UP.inc()
        log.error("push_gave_up %s error=%s", what, failure)
        return
    wait = settings.push_retry_seconds * 2**attempt
    log.warning("push_failed %s error=%s retry_in=%.1fs", what, failure, wait)
    async with rt.db.transaction() as db:
        await jobs.defer(
            db,
            "push:send",
            at=clock.now() + timedelta(seconds=wait),
            user_id=user_id,
            pending=pending,
            attempt=attempt + 1,
        )


def _invalid_tokens(response: httpx.Response) -> list[str]:
    """Tokens a gateway that fans out per device reports dead in a 2xx answer:
    `{"invalidTokens": [...]}` (optional)."""
    try:
        named = response.json().get("invalidTokens", [])
    except (ValueError, AttributeError):
        return []
    return [token for token in named if isinstance(token, str)] if isinstance(named, list) else []
