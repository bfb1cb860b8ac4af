"""The database: where it is, the engine, and the transaction that owns each unit of work."""

import json
import re
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

import psycopg
import sqlalchemy.exc
from sqlalchemy import ARRAY, MetaData, any_, bindparam
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from afterhours.settings import Settings

# What a lost, restarting or saturated database raises through psycopg and SQLAlchemy: "try again
# shortly", never a bug (psycopg_pool.PoolTimeout and AdminShutdown are OperationalErrors).
DATABASE_OUTAGE: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
)

AfterCommit = Callable[[], Awaitable[None]]
Batch = Callable[[AsyncSession], Awaitable[int]]


class Outbox(Protocol):
    """Where a transaction's recorded events go (realtime.Emitter): `stage` runs just before
    the commit, inside the transaction, and may queue after-commit work of its own."""

    async def stage(self, db: AsyncSession, staged: list[Any]) -> None: ...


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


def one_of(column: str, values: tuple[str, ...]) -> str:
    """A CHECK constraint's SQL: `column` holds one of `values` (defined once, as a Literal)."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def libpq_url(settings: Settings) -> str:
    """The PostgreSQL URL: the configured one, or the embedded server's (started if needed)."""
    if settings.database_url:
        return settings.database_url
    import pgserver  # only needed when no server is configured

    data_dir = embedded_data_dir(settings)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    _forget_dead_users(data_dir)
    # "stop": pgserver stops the server when the last process that asked for it exits, so
    # `afterhours serve` and `afterhours worker` share it, and Ctrl-C on the last one stops it.
    server = pgserver.get_server(data_dir, cleanup_mode="stop")  # type: ignore[attr-defined]
    return str(server.get_uri())


def embedded_data_dir(settings: Settings) -> Path:
    return (settings.data_dir / "postgres").resolve()


def _forget_dead_users(data_dir: Path) -> None:
    """pgserver counts the processes using its server in a file; one killed with SIGKILL never
    leaves it and would keep the server up for ever, so the dead are struck off first."""
    import psutil
    from pgserver.postgres_server import PostgresServer

    users = data_dir / ".handle_pids.json"
    with PostgresServer._lock:
        if users.exists():
            alive = [pid for pid in json.loads(users.read_text()) if psutil.pid_exists(pid)]
            users.write_text(json.dumps(alive))


def stop_embedded(settings: Settings, timeout: float = 30.0) -> bool:
    """Stop the embedded server now, whoever uses it (PostgreSQL's fast shutdown: open
    transactions roll back). False if it was not running."""
    import psutil

    pid_file = embedded_data_dir(settings) / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
        postmaster.send_signal(signal.SIGINT)
        postmaster.wait(timeout)
    except psutil.NoSuchProcess:
        return False
    return True


def sqlalchemy_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def psycopg_conninfo(url: str) -> str:
    """libpq accepts `postgresql://`; strip any SQLAlchemy driver suffix."""
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


class Database:
    """The engine and the one transaction owner: every unit of work (a request, a socket event,
    a job, one batch of a job) is one `transaction()`, and services inside it only flush."""

    def __init__(self, url: str, *, outbox: Outbox | None = None, pool_size: int = 20) -> None:
        self.url = url
        self.outbox = outbox
        self.engine: AsyncEngine = create_async_engine(
            sqlalchemy_url(url), pool_size=pool_size, max_overflow=10, pool_pre_ping=True
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commit on success, roll back on error; then its events go out and
        its after-commit hooks run. Nothing of a rolled-back unit is sent."""
        async with self.sessionmaker() as db:
            try:
                yield db
                staged = db.info.pop("staged", None)
                if staged and self.outbox is not None:
                    await self.outbox.stage(db, staged)
                for hook in db.info.pop("before_commit", []):
                    await hook()
                await db.commit()
            except BaseException:
                await db.rollback()
                raise
            hooks: list[AfterCommit] = db.info.pop("after_commit", [])
        for hook in hooks:
            await hook()

    async def in_batches(self, batch: Batch, size: int) -> int:
        """Run `batch` in a transaction of its own, again and again, until one does fewer than
        `size` rows; returns the total. Each batch's events go out as that batch commits, so
        a later batch failing cannot hold back what earlier ones did."""
        total = 0
        while True:
            async with self.transaction() as db:
                done = await batch(db)
            total += done
            if done < size:
                return total

    async def dispose(self) -> None:
        await self.engine.dispose()


def stage_events(db: AsyncSession, staged: list[Any]) -> None:
    """Queue events on `db`'s unit of work; its owner hands them to the outbox at commit."""
    db.info.setdefault("staged", []).extend(staged)


def before_commit(db: AsyncSession, hook: Callable[[], Awaitable[None]]) -> None:
    """Run `hook` in `db`'s transaction just before it commits (after its events are staged,
    which may defer jobs), in the order given; not at all if the work fails before."""
    db.info.setdefault("before_commit", []).append(hook)


def after_commit(db: AsyncSession, hook: AfterCommit) -> None:
    """Run `hook` once `db` has committed; dropped if it rolls back."""
    db.info.setdefault("after_commit", []).append(hook)


async def raw_connection(db: AsyncSession) -> psycopg.AsyncConnection[Any]:
    """The psycopg connection under `db`'s transaction (for jobs deferred inside it, and bulk
    statements). Looked up once per transaction (each lookup crosses SQLAlchemy's greenlet
    bridge); a session that commits and goes on gets the next transaction's connection."""
    cached = db.info.get("psycopg")
    transaction = db.sync_session.get_transaction()
    if cached is not None and transaction is not None and cached[0] is transaction:
        cached_driver: psycopg.AsyncConnection[Any] = cached[1]
        return cached_driver
    conn = await db.connection()
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert isinstance(driver, psycopg.AsyncConnection)
    db.info["psycopg"] = (db.sync_session.get_transaction(), driver)
    return driver


def any_of(column: Any, values: Any, item_type: Any) -> Any:
    """`column = ANY(:array)`: one array parameter however many values (IN would bind each)."""
    return column == any_(bindparam(None, list(values), type_=ARRAY(item_type)))


async def fetch_all(db: AsyncSession, stmt: Any) -> list[tuple[Any, ...]]:
    """Run a Core SELECT on `db`'s connection and return plain tuples.

    For bulk reads (a sweep loads tens of thousands of rows): psycopg's own row loading is
    several times faster than SQLAlchemy's result processing, and the statement stays a typed
    SQLAlchemy expression.
    """
    compiled = stmt.compile(dialect=db.get_bind().dialect)
    return await execute_bulk(db, _binary_placeholders(str(compiled)), compiled.params)


def bulk_sql(stmt: Any) -> str:
    """A Core statement as execute_bulk's SQL, compiled once by a hot path that runs it often
    (its parameters given by name with `bindparam`)."""
    from sqlalchemy.dialects.postgresql.psycopg import PGDialectAsync_psycopg

    dialect = PGDialectAsync_psycopg()  # type: ignore[no-untyped-call]
    return _binary_placeholders(str(stmt.compile(dialect=dialect)))


def _binary_placeholders(sql: str) -> str:
    """`%(name)s` → `%(name)b`: binary parameters (a list of 10,000 UUIDs dumps ~5x faster)."""
    return re.sub(r"%\((\w+)\)s", r"%(\1)b", sql)


async def execute_bulk(
    db: AsyncSession, sql: str, params: Mapping[str, Any] | None = None
) -> list[tuple[Any, ...]]:
    """Run SQL (psycopg placeholders; `%(name)b` for big arrays) on `db`'s connection,
    inside its transaction; returns the rows, if any. For statements over thousands of rows,
    where SQLAlchemy's per-value processing costs more than the database's work."""
    if db.new or db.dirty or db.deleted:
        await db.flush()  # what the ORM holds must be in the database before we bypass it
    connection = await raw_connection(db)
    cursor = await connection.execute(sql, params, binary=True)
    return await cursor.fetchall() if cursor.description else []
