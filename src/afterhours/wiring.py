"""Who reacts to whose change, which jobs exist and which socket events are handled: the one
place where features are put together. A feature never registers itself on import; it
exposes its reactions as plain functions, and they are connected here.

Each reaction runs inside the transaction of the change it reacts to, so the change, the
reaction, their jobs and their events commit together (or not at all).
"""

import asyncio
import logging
import signal
from dataclasses import dataclass
from functools import partial

import procrastinate
import socketio
from fastapi import APIRouter

from afterhours import jobs, metrics, realtime, sockets
from afterhours.auth import Fingerprints, TokenVerifier
from afterhours.chat import events as chat_events
from afterhours.chat import screening
from afterhours.chat.routes import router as chat_router
from afterhours.chat.schemas import SendMessageIn, TypingIn
from afterhours.chat.screening import Screen
from afterhours.chat.writer import MessageWriter
from afterhours.console.routes import router as console_router
from afterhours.db import Database
from afterhours.limits import Limiter
from afterhours.matching import service as matching
from afterhours.matching.routes import router as matching_router
from afterhours.matching.tasks import blueprint as matching_tasks
from afterhours.moderation import service as moderation
from afterhours.moderation.admin import router as admin_router
from afterhours.moderation.routes import router as moderation_router
from afterhours.ops.routes import router as ops_router
from afterhours.presence import Presence
from afterhours.profiles import service as profiles
from afterhours.profiles.routes import router as profiles_router
from afterhours.profiles.tasks import blueprint as profiles_tasks
from afterhours.push import service as push
from afterhours.push.gateway import Gateway
from afterhours.push.routes import router as push_router
from afterhours.push.tasks import blueprint as push_tasks
from afterhours.replay.routes import router as replay_router
from afterhours.retention.tasks import blueprint as retention_tasks
from afterhours.safety import service as safety
from afterhours.safety.routes import router as safety_router
from afterhours.sessions import service as sessions
from afterhours.sessions.routes import router as sessions_router
from afterhours.sessions.tasks import blueprint as sessions_tasks
from afterhours.settings import Settings
from afterhours.storage import make_storage

log = logging.getLogger("afterhours.wiring")


@dataclass(frozen=True)
class Lifecycle:
    """Every feature's reactions to the others' changes, as each feature's service takes them."""

    sessions: sessions.Reactions
    profiles: profiles.Reactions
    safety: safety.Reactions


def lifecycle(settings: Settings) -> Lifecycle:
    session_reactions = sessions.Reactions(
        # A session that starts gets a match attempt shortly after.
        started=[partial(matching.attempt_after_start, settings=settings)],
        # A session that closes closes its open match (the other side is told).
        closed=[partial(matching.close_with_session, settings=settings)],
    )
    return Lifecycle(
        sessions=session_reactions,
        profiles=profiles.Reactions(
            # Before the account goes: its session ends the normal way, then its matches go,
            # except those an open report holds for moderation.
            account_deleting=[
                partial(
                    sessions.end_for_user, reason="account_deleted", reactions=session_reactions
                ),
                partial(matching.forget_account, kept=moderation.held_by_open_report),
            ],
            # Without an After Hours profile nobody can be in session.
            profile_deleting=[
                partial(
                    sessions.end_for_user, reason="profile_deleted", reactions=session_reactions
                )
            ],
        ),
        # A block closes any open match between the two.
        safety=safety.Reactions(blocked=[partial(matching.close_on_block, settings=settings)]),
    )


def event_reactions(settings: Settings) -> list[realtime.EventReaction]:
    """What reacts to every transaction's events, inside it: push, for users away."""
    if not settings.push_webhook_url:
        return []
    return [partial(push.queue_for_away, settings=settings)]


def push_gateway(settings: Settings) -> Gateway | None:
    """The host app's push gateway, or None (push off, said once in this process's log)."""
    if not settings.push_webhook_url:
        log.info("push_off reason=AFTERHOURS_PUSH_WEBHOOK_URL_unset")
        return None
    assert settings.push_webhook_secret  # Settings checks it comes with the URL
    return Gateway(
        settings.push_webhook_url, settings.push_webhook_secret, settings.push_timeout_seconds
    )


# Jobs, by namespace: task "matching:attempt" is matching_tasks' "attempt".
JOB_BLUEPRINTS: dict[str, procrastinate.Blueprint] = {
    "push": push_tasks,
    "profiles": profiles_tasks,
    "sessions": sessions_tasks,
    "matching": matching_tasks,
    "retention": retention_tasks,
}

ROUTERS: list[APIRouter] = [
    profiles_router,
    sessions_router,
    matching_router,
    chat_router,
    safety_router,
    moderation_router,
    admin_router,
    replay_router,
    push_router,
    ops_router,
    console_router,
]


def message_screen(settings: Settings) -> Screen:
    """What every message is put to before it is stored (AFTERHOURS_MESSAGE_SCREEN)."""
    return screening.load(settings.message_screen)


def install_socket_handlers(
    sio: socketio.AsyncServer,
    *,
    verifier: TokenVerifier,
    fingerprints: Fingerprints,
    database: Database,
    presence: Presence,
    limiter: Limiter,
    screen: Screen,
) -> None:
    """Connect (auth, bans, rooms, replay, presence) and the client events, each answered
    through its ack."""
    sockets.install_connect(sio, verifier, fingerprints, database, presence)
    writer = MessageWriter(database, limiter=limiter, screen=screen)
    send = chat_events.message_sender(writer)
    sockets.ack_handler(sio, database, "after_hours:send_message", SendMessageIn, send)
    typing = sockets.in_transaction(database, chat_events.typing_relay(sio, limiter))
    sockets.ack_handler(sio, database, "after_hours:typing", TypingIn, typing)


async def run_worker_alone(settings: Settings) -> None:
    """`afterhours worker`: the job worker without sockets; its events reach the serving
    processes' sockets through the fan-out (PostgreSQL NOTIFY or Redis). SIGTERM and SIGINT
    stop it cleanly (running jobs finish); it raises jobs.WorkerGaveUp if it cannot go on."""
    assert settings.database_url
    jobs.register_tasks(JOB_BLUEPRINTS)
    # No HTTP of its own: the counters of what this worker did go out on a port of their own.
    stop_metrics = metrics.serve_worker_metrics(settings)
    outbox = realtime.external_emitter(settings, event_reactions(settings))
    db = Database(settings.database_url, outbox=outbox)
    pool = await jobs.open_job_app(settings.database_url)
    gateway = push_gateway(settings)
    rt = jobs.Runtime(
        settings=settings,
        db=db,
        storage=make_storage(settings),
        lifecycle=lifecycle(settings),
        push=gateway,
    )
    worker = asyncio.create_task(jobs.run_worker(rt, name="standalone"))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, worker.cancel)
    try:
        await worker
    except asyncio.CancelledError:
        pass
    finally:
        await pool.close()
        await db.dispose()
        if gateway is not None:
            await gateway.aclose()
        stop_metrics()
