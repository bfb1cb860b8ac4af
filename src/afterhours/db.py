"""The database: where it is, the engine, and the transaction that owns each unit of work."""

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import psycopg
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

AfterCommit = Callable[[], Awaitable[None]]


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


def libpq_url(settings: Settings) -> str:
    """The PostgreSQL URL: the configured one, or the embedded server's (started if needed)."""
    if settings.database_url:
        return settings.database_url
    import pgserver  # only needed when no server is configured

    data_dir = (settings.data_dir / "postgres").resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this process, so `afterhours worker` reaches it too.
    server = pgserver.get_server(data_dir, cleanup_mode=None)  # type: ignore[attr-defined]
    return str(server.get_uri())


def sqlalchemy_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def psycopg_conninfo(url: str) -> str:
    """libpq accepts `postgresql://`; strip any SQLAlchemy driver suffix."""
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


class Database:
    def __init__(
        self, url: str, *, emitter: Any = None, settings: Any = None, pool_size: int = 20
    ) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(
            sqlalchemy_url(url), pool_size=pool_size, max_overflow=10, pool_pre_ping=True
        )
        # Each unit of work carries its process's settings and event emitter (realtime.emit
        # sends through it after commit).
        self.sessionmaker = async_sessionmaker(
            self.engine, expire_on_commit=False, info={"emitter": emitter, "settings": settings}
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commit on success, roll back on error, then run after-commit hooks."""
        async with self.sessionmaker() as db:
            try:
                yield db
                await db.commit()
            except BaseException:
                await db.rollback()
                raise
            hooks: list[AfterCommit] = db.info.pop("after_commit", [])
        for hook in hooks:
            await hook()

    async def dispose(self) -> None:
        await self.engine.dispose()


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
