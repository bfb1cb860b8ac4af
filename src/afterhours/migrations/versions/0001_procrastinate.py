"""procrastinate's job queue schema, as shipped with procrastinate 3.10.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence
from importlib import resources

from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The schema of the pinned version; later procrastinate upgrades add a revision that runs
    # the package's own migration files (procrastinate/sql/migrations) for the versions crossed.
    schema = resources.files("procrastinate.sql").joinpath("schema.sql").read_text()
    # Straight to psycopg without parameters, so the `%` in the SQL is not read as a placeholder.
    driver = op.get_bind().connection.driver_connection
    assert driver is not None
    driver.execute(schema)


def downgrade() -> None:
    raise NotImplementedError("the job queue schema is not removed by a downgrade")
