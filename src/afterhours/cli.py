"""afterhours serve | worker | migrate | db stop | token"""

import argparse
import asyncio
import gc
import logging
import sys
import uuid

from afterhours.settings import Settings, get_settings


def configure_logging(settings: Settings) -> None:
    from afterhours import logs

    logs.configure(settings.log_format)


def migrate(settings: Settings) -> str:
    """Bring the database to the newest schema; returns its URL so callers reuse it."""
    from afterhours import db, migrations

    url = db.libpq_url(settings)
    migrations.upgrade(url)
    return url


def tune_gc() -> None:
    """For long-running processes: objects made at start-up need no more collection passes, and
    fewer, larger young-generation passes keep collector pauses out of message latency and
    sweeps (which allocate hundreds of thousands of short-lived objects)."""
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def serve(settings: Settings, host: str, port: int, with_worker: bool) -> None:
    import uvicorn

    from afterhours import serving
    from afterhours.app import create_app

    url = migrate(settings)
    settings = settings.model_copy(update={"database_url": url})
    gave_up: list[BaseException] = []

    def stop_serving(error: BaseException) -> None:
        gave_up.append(error)
        server.should_exit = True

    app = create_app(settings, with_worker=with_worker, on_worker_gave_up=stop_serving)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        proxy_headers=True,
        http=serving.BoundedHeaders,
        **serving.WEBSOCKET_OPTIONS,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
    )
    server = serving.graceful_server(config, app.engineio_server.eio)
    tune_gc()
    server.run()
    if gave_up:
        sys.exit(1)


def worker(settings: Settings) -> None:
    from afterhours import jobs, wiring

    url = migrate(settings)
    settings = settings.model_copy(update={"database_url": url})
    tune_gc()
    try:
        asyncio.run(wiring.run_worker_alone(settings))
    except jobs.WorkerGaveUp as exc:
        logging.getLogger("afterhours.jobs").critical("worker_gave_up reason=%s", exc)
        sys.exit(1)


def token(settings: Settings, user_id: str, premium: bool, admin: bool, ttl: int) -> None:
    from afterhours.auth import TokenVerifier

    issued = TokenVerifier(settings).issue(
        uuid.UUID(user_id), premium=premium, admin=admin, ttl=ttl
    )
    print(issued)
    if admin:
        # On stderr, so `$(afterhours token ...)` stays the bare token. The token rides the
        # fragment, which the browser never sends: it reaches no server log.
        base = (settings.public_url or "http://127.0.0.1:8000").rstrip("/")
        print(f"moderation console: {base}/admin#token={issued}", file=sys.stderr)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="afterhours", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="REST + Socket.IO (+ a job worker)")
    serve_cmd.add_argument("--host", default="127.0.0.1")
    serve_cmd.add_argument("--port", type=int, default=8000)
    serve_cmd.add_argument("--no-worker", action="store_true", help="do not run a job worker")
    commands.add_parser("worker", help="a job worker alone")
    commands.add_parser("migrate", help="apply database migrations")
    db_cmd = commands.add_parser("db", help="the embedded PostgreSQL")
    db_cmd.add_argument("action", choices=["stop"], help="stop it now, whoever uses it")
    token_cmd = commands.add_parser("token", help="print a JWT the service accepts")
    token_cmd.add_argument("user_id", type=uuid.UUID)
    token_cmd.add_argument("--premium", action="store_true")
    token_cmd.add_argument("--admin", action="store_true")
    token_cmd.add_argument("--ttl", type=int, default=24 * 3600, help="seconds (default a day)")
    return root


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    settings = get_settings()
    configure_logging(settings)
    if args.command == "serve":
        serve(settings, args.host, args.port, with_worker=not args.no_worker)
    elif args.command == "worker":
        worker(settings)
    elif args.command == "migrate":
        migrate(settings)
    elif args.command == "db":
        from afterhours import db

        print("stopped" if db.stop_embedded(settings) else "not running")
    elif args.command == "token":
        token(settings, str(args.user_id), args.premium, args.admin, args.ttl)
