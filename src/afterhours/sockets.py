"""The Socket.IO server and its handlers: connect (auth, bans, rooms, replay of what was
missed), token expiry on live sockets, and client events answered with an ack in the contract's
envelope. What the server sends is realtime's (the event log and its fan-out)."""

import asyncio
import itertools
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import socketio
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from afterhours import bans, logs, transport
from afterhours.auth import MAX_FINGERPRINT_LENGTH, Fingerprints, Identity, TokenVerifier
from afterhours.db import DATABASE_OUTAGE, Database
from afterhours.errors import SERVICE_UNAVAILABLE, AppError, ack_error, from_validation_error
from afterhours.presence import Presence
from afterhours.pubsub import CompactJson
from afterhours.realtime import ADMINS, client_manager, events_after, room
from afterhours.serving import ProtocolLog
from afterhours.settings import Settings

log = logging.getLogger("afterhours.realtime")

REPLAY_LIMIT = 500
ONE_PAYLOAD = AppError(
    "VALIDATION_ERROR", "An event takes one payload object (and an acknowledgement callback)"
)


def allowed_origins(listed: list[str]) -> Any:
    """Socket.IO's origin check: the service's own origin (the moderation console is one of its
    pages) and those listed. engineio takes None as "own origin only" and an empty list as "no
    check at all", so never pass it [] and never a bare list, which would drop the own origin."""
    if not listed:
        return None
    if "*" in listed:
        return "*"
    allowed = frozenset(listed)

    def check(origin: str | None, environ: dict[str, Any]) -> bool:
        own = {f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}"}
        if "HTTP_X_FORWARDED_HOST" in environ:  # as engineio's own check reads a proxy's
            scheme = environ.get("HTTP_X_FORWARDED_PROTO", "https").split(",")[0].strip()
            own.add(f"{scheme}://{environ['HTTP_X_FORWARDED_HOST'].split(',')[0].strip()}")
        return origin in allowed or origin in own

    return check


def create_server(settings: Settings, url: str) -> socketio.AsyncServer:
    # python-socketio's server, holding less per connection (afterhours.transport).
    return transport.SocketServer(
        async_mode="asgi",
        client_manager=client_manager(settings, url),
        cors_allowed_origins=allowed_origins(settings.cors_origins),
        json=CompactJson,
        ping_interval=settings.socket_ping_interval_seconds,
        ping_timeout=settings.socket_ping_timeout_seconds,
        logger=ProtocolLog("afterhours.socketio"),
        engineio_logger=ProtocolLog("afterhours.engineio"),
    )


def install_connect(
    sio: socketio.AsyncServer,
    verifier: TokenVerifier,
    fingerprints: Fingerprints,
    database: Database,
    presence: Presence,
) -> None:
    """Connect (auth and bans, the user's room, replay of what was missed) and disconnect, both
    counted in `presence`. A socket lives no longer than its token: it is disconnected at the
    token's `exp`, and an event that arrives after it (before the timer has run) is refused
    UNAUTHORIZED."""

    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        auth = auth if isinstance(auth, dict) else {}
        try:
            identity = verifier.verify(str(auth.get("token") or ""))
            # The REST header, or `fingerprint` in the handshake's auth (browsers cannot set
            # headers on a WebSocket).
            raw = auth.get("fingerprint") or environ.get("HTTP_X_DEVICE_FINGERPRINT")
            if not isinstance(raw, str) or len(raw) > MAX_FINGERPRINT_LENGTH:
                raw = None
            fingerprint = fingerprints.hash(raw)
            expiry = asyncio.get_running_loop().call_later(
                max(0.0, identity.expires_at - time.time()), _disconnect_later, sio, sid
            )
            await sio.save_session(sid, {"identity": identity, "expiry": expiry})
            try:
                async with database.transaction() as db:
                    await bans.check_not_banned(
                        db, user_id=identity.user_id, fingerprint_hash=fingerprint
                    )
                    await sio.enter_room(sid, room(identity.user_id))
                    if identity.admin:
                        await sio.enter_room(sid, ADMINS)
                    # Joined the room first, so nothing falls between replay and live events;
                    # the client drops any seq it has already seen.
                    await _replay(sio, db, sid, identity.user_id, auth.get("lastSeq"))
            except DATABASE_OUTAGE as exc:
                # A phone may connect while the database is away (events resume by seq once it
                # is back); its bans are checked at its first event instead.
                log.warning("connect_unchecked user_id=%s error=%s", identity.user_id, exc)
                await sio.save_session(
                    sid, {"identity": identity, "expiry": expiry, "unchecked": fingerprint}
                )
                await sio.enter_room(sid, room(identity.user_id))
        except AppError as exc:
            # Reaches the client's `connect_error` as {message, data: {code}}.
            raise socketio.exceptions.ConnectionRefusedError(
                exc.message, {"code": exc.code}
            ) from exc
        # Last: a connect refused above gets no disconnect, so it must not be counted.
        presence.connected(identity.user_id)

    async def disconnect(sid: str, reason: Any = None) -> None:
        session = await sio.get_session(sid)
        if "identity" in session:
            session["expiry"].cancel()
            presence.disconnected(session["identity"].user_id)

    sio.on("connect", connect)
    sio.on("disconnect", disconnect)


async def _replay(
    sio: socketio.AsyncServer, db: AsyncSession, sid: str, user_id: uuid.UUID, last_seq: Any
) -> None:
    """Send the socket what its user missed after `last_seq` (when the client gave one)."""
    if not isinstance(last_seq, int) or isinstance(last_seq, bool) or last_seq < 0:
        return
    for row in await events_after(db, user_id=user_id, after=last_seq, limit=REPLAY_LIMIT):
        await sio.emit(row.event, {**row.data, "seq": row.seq}, to=sid)


async def check_admitted(
    sio: socketio.AsyncServer, database: Database, sid: str, session: dict[str, Any]
) -> None:
    """The ban check of a socket that connected while the database was away, at its first
    event: a banned user is refused and disconnected."""
    if "unchecked" not in session:
        return
    identity: Identity = session["identity"]
    try:
        async with database.transaction() as db:
            await bans.check_not_banned(
                db, user_id=identity.user_id, fingerprint_hash=session["unchecked"]
            )
    except AppError:
        _disconnect_later(sio, sid)
        raise
    del session["unchecked"]
    await sio.save_session(sid, session)


def _disconnect_later(sio: socketio.AsyncServer, sid: str) -> None:
    task = asyncio.ensure_future(sio.disconnect(sid))
    _expiring.add(task)
    task.add_done_callback(_expiring.discard)


_expiring: set[asyncio.Future[None]] = set()  # disconnects under way, kept from the collector
TOKEN_EXPIRED = AppError("UNAUTHORIZED", "Token expired", status=401)


# Client events' ids (for their log lines): this process's random half and a count, 32 hex
# digits like a request's uuid4, without uuid4's system call and object on every chat message.
_EVENT_ID_PREFIX = secrets.token_hex(8)
_event_count = itertools.count()


def _event_id() -> str:
    return f"{_EVENT_ID_PREFIX}{next(_event_count):016x}"


Payload = TypeVar("Payload", bound=BaseModel)
Handler = Callable[[Identity, Payload], Awaitable[dict[str, Any]]]
UnitHandler = Callable[[AsyncSession, Identity, Payload], Awaitable[dict[str, Any]]]


def in_transaction(database: Database, handler: UnitHandler[Payload]) -> Handler[Payload]:
    """A handler whose event is one unit of work, owned here: commit or roll back, then send."""

    async def run(identity: Identity, payload: Payload) -> dict[str, Any]:
        async with database.transaction() as db:
            return await handler(db, identity, payload)

    return run


def ack_handler(
    sio: socketio.AsyncServer,
    database: Database,
    event: str,
    model: type[Payload],
    handler: Handler[Payload],
) -> None:
    """Register `handler` for a client event: validated payload in, an ack out, errors in the
    contract's envelope and never an exception through the socket."""

    async def on_event(sid: str, *args: Any) -> dict[str, Any]:
        # Each event is a unit of work of its own, like a request: its log lines share an id.
        with logs.request_context(_event_id()):
            return await handle(sid, *args)

    async def handle(sid: str, *args: Any) -> dict[str, Any]:
        session = await sio.get_session(sid)
        identity: Identity = session["identity"]
        if time.time() >= identity.expires_at:
            return ack_error(TOKEN_EXPIRED)
        if len(args) > 1:
            return ack_error(ONE_PAYLOAD)
        try:
            await check_admitted(sio, database, sid, session)
            payload = model.model_validate(args[0] if args and args[0] is not None else {})
            result = await handler(identity, payload)
        except ValidationError as exc:
            return ack_error(from_validation_error(exc))
        except AppError as exc:
            return ack_error(exc)
        except DATABASE_OUTAGE as exc:
            log.warning("database_unavailable event=%s error=%s", event, type(exc).__name__)
            return ack_error(SERVICE_UNAVAILABLE)
        except Exception:
            log.exception("socket_handler_failed event=%s", event)
            return {"ok": False, "error": {"code": "INTERNAL_ERROR", "message": "Internal error"}}
        return {"ok": True, **result}

    sio.on(event, on_event)
