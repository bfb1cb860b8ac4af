"""create_app(): FastAPI and Socket.IO in one ASGI app, with the lifespan that owns resources."""

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from sqlalchemy import text
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from afterhours import jobs, logs, metrics, migrations, realtime, serving, sockets, wiring
from afterhours.auth import Fingerprints, TokenVerifier
from afterhours.db import Database, libpq_url
from afterhours.errors import AppError, install_handlers, render
from afterhours.limits import Limiter
from afterhours.presence import Presence
from afterhours.settings import Settings, get_settings, persistent_secret
from afterhours.storage import PHOTO_ROUTE, LocalStorage, make_storage

log = logging.getLogger("afterhours.app")


SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# A method label outside these is "other": clients choose methods, series must stay bounded.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestId:
    """Tag every request with an id (the caller's, if it is a safe token) and echo it back on
    every response, errors and refusals included, so a report can be traced to its log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if SAFE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Request-Id"] = request_id
            await send(message)

        with logs.request_context(request_id):
            await self.app(scope, receive, send_with_id)


class HttpMetrics:
    """Latency and status of every HTTP request, labelled by the route that matched: its path
    template (`/api/after-hours/matches/{match_id}`), never the raw path, so there are as many
    series as routes whatever clients send."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception escaped every handler

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            route = route_template(scope)
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
            elapsed = time.perf_counter() - started
            metrics.HTTP_SECONDS.labels(route, method).observe(elapsed)
            metrics.HTTP_REQUESTS.labels(route, method, str(status)).inc()


def route_template(scope: Scope) -> str:
    """The path template of the route that took the request, once it has been handled."""
    # The router leaves the route it chose (a 405's included) in the scope.
    template = getattr(scope.get("route"), "path_format", None)
    if template:
        return str(template)
    # A mount (the console's assets) names no route: it moves its prefix into root_path.
    if "app_root_path" in scope:
        mounted = scope.get("root_path", "").removeprefix(scope["app_root_path"])
        if mounted:
            return f"{mounted}/{{path}}"
    return metrics.UNMATCHED_ROUTE


class BodyLimit:
    """Refuse bodies over the limit with 413 before any route sees them (photos get more room)."""

    def __init__(self, app: ASGIApp, *, max_json: int, max_photo: int) -> None:
        self.app = app
        self.max_json = max_json
        self.max_photo = max_photo

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_photo if scope["path"].endswith("/photo") else self.max_json
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self.refuse(scope, receive, send, limit)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > limit:
                await self.refuse(scope, receive, send, limit)
                return
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        error = AppError("PAYLOAD_TOO_LARGE", f"Request body exceeds {limit} bytes", status=413)
        await render(error)(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    *,
    with_worker: bool = False,
    on_worker_gave_up: Callable[[BaseException], None] | None = None,
) -> Any:
    """The ASGI app. With `with_worker`, a job worker runs in this process too; if it gives up
    (jobs.WorkerGaveUp), `on_worker_gave_up` is told, so the process can exit non-zero."""
    settings = settings or get_settings()
    url = libpq_url(settings)
    jobs.register_tasks(wiring.JOB_BLUEPRINTS)
    sio = sockets.create_server(settings, url)
    # The engine connects lazily: built now, so everything below is handed the one database.
    outbox = realtime.Emitter(
        sio.manager, has_sockets=True, reactions=wiring.event_reactions(settings)
    )
    db = Database(url, outbox=outbox)
    presence = Presence(db, settings.presence_heartbeat_seconds)
    lifecycle = wiring.lifecycle(settings)
    storage = make_storage(settings)
    gateway = wiring.push_gateway(settings) if with_worker else None
    limiter = Limiter.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker: asyncio.Task[None] | None = None
        pool = None
        presence.start()
        if with_worker:
            pool = await jobs.open_job_app(url)
            rt = jobs.Runtime(
                settings=settings, db=db, storage=storage, lifecycle=lifecycle, push=gateway
            )
            worker = asyncio.create_task(jobs.run_worker(rt, name="in-process"))
            worker.add_done_callback(partial(_worker_ended, on_worker_gave_up))
        try:
            yield
        finally:
            if worker is not None:
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
            if pool is not None:
                await pool.close()
            if gateway is not None:
                await gateway.aclose()
            await presence.stop()
            await limiter.aclose()
            await sio.shutdown()
            await realtime.stop_listening(sio)
            await db.dispose()

    api = FastAPI(
        title="After Hours",
        version="1.0.0",
        description="Timed, location-based matching sessions. Errors share one envelope: "
        '`{"success": false, "error": "...", "code": "..."}`.',
        lifespan=lifespan,
        # So a generated client's base URL is the public one, not the generating machine's.
        servers=[{"url": settings.public_url}] if settings.public_url else None,
    )
    api.state.settings = settings
    api.state.db = db
    api.state.lifecycle = lifecycle
    api.state.location_secret = (
        settings.location_secret or persistent_secret(settings, "location_secret")
    ).encode()
    api.state.verifier = TokenVerifier(settings)
    api.state.fingerprints = Fingerprints(settings)
    api.state.limiter = limiter
    api.state.screen = wiring.message_screen(settings)
    api.state.storage = storage
    install_handlers(api)
    for router in wiring.ROUTERS:
        api.include_router(router)
    wiring.install_socket_handlers(
        sio,
        verifier=api.state.verifier,
        fingerprints=api.state.fingerprints,
        database=db,
        presence=presence,
        limiter=limiter,
        screen=api.state.screen,
    )

    @api.get("/health", tags=["operations"])
    async def health() -> dict[str, Any]:
        return {"success": True, "status": "ok"}

    @api.get("/ready", tags=["operations"], responses={503: {"description": "Not ready"}})
    async def ready(request: Request) -> JSONResponse:
        problems = await readiness_problems(request.app)
        if problems:
            body = {"success": False, "error": "; ".join(problems), "code": "NOT_READY"}
            return JSONResponse(body, status_code=503)
        return JSONResponse({"success": True, "status": "ready"})

    if isinstance(storage, LocalStorage):

        @api.get(PHOTO_ROUTE + "/{key:path}", include_in_schema=False)
        async def photo(key: str, expires: str = "", signature: str = "") -> FileResponse:
            # A malformed link is as dead as an expired one: 404, never a validation error.
            if not expires.isdigit() or not storage.check(key, int(expires), signature):
                raise AppError("NOT_FOUND", "Photo not found or link expired", status=404)
            try:
                path = storage.path(key)
            except ValueError as exc:
                raise AppError("NOT_FOUND", "Photo not found", status=404) from exc
            if not path.is_file():
                raise AppError("NOT_FOUND", "Photo not found", status=404)
            return FileResponse(path, media_type="image/jpeg")

    http: ASGIApp = RequestId(
        HttpMetrics(
            BodyLimit(api, max_json=settings.max_json_bytes, max_photo=settings.max_photo_bytes)
        )
    )
    if settings.cors_origins:
        # Outermost, so refusals (413, 429, 500) reach a browser page too; Socket.IO's polling
        # requests get their headers from engineio, on the same list (sockets.create_server).
        http = CORSMiddleware(
            http,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["X-Request-Id", "Retry-After"],
            max_age=600,
        )
    return serving.SocketApp(sio, other_asgi_app=http, socketio_path="socket.io")


def _worker_ended(
    on_gave_up: Callable[[BaseException], None] | None, worker: "asyncio.Task[None]"
) -> None:
    if worker.cancelled() or worker.exception() is None:
        return
    error = worker.exception()
    assert error is not None
    log.critical("worker_gave_up reason=%s", error)
    if on_gave_up is not None:
        on_gave_up(error)


async def readiness_problems(app: FastAPI) -> list[str]:
    try:
        async with app.state.db.engine.connect() as conn:
            revision = await conn.scalar(text("SELECT version_num FROM alembic_version"))
    except Exception as exc:  # any database failure means "not ready", reported as such
        log.warning("ready_check_failed error=%s", type(exc).__name__)
        return ["database unreachable or not migrated"]
    if revision != migrations.head_revision():
        return [f"database at migration {revision}, expected {migrations.head_revision()}"]
    async with app.state.db.sessionmaker() as db:
        age = await jobs.last_heartbeat_age(db)
    max_age = app.state.settings.worker_heartbeat_max_age_seconds
    problems = []
    if age is None or age > max_age:
        problems.append(f"no job worker seen in the last {max_age:g} s")
    fan_out = await realtime.fan_out_problem(app.state.settings)
    return problems + ([fan_out] if fan_out else [])
