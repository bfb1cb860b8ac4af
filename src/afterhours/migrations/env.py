from alembic import context
from sqlalchemy import create_engine, pool

from afterhours.models import Base

target_metadata = Base.metadata


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    # procrastinate's tables come from its own SQL (revision 0001), not from our models.
    return not (type_ == "table" and name is not None and name.startswith("procrastinate_"))


def run_migrations_online() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "migrations need a database URL"
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        # Concurrent starts (serve + worker) must not both migrate: serialise on an advisory lock.
        connection.exec_driver_sql("SELECT pg_advisory_lock(727274)")
        try:
            context.configure(
                connection=connection, target_metadata=target_metadata, include_name=include_name
            )
            with context.begin_transaction():
                context.run_migrations()
        finally:
            connection.exec_driver_sql("SELECT pg_advisory_unlock(727274)")
            connection.commit()


run_migrations_online()
