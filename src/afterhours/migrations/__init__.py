"""Alembic migrations, runnable from code (`afterhours migrate`, `serve` start) and the CLI."""

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from afterhours.db import sqlalchemy_url

HERE = Path(__file__).parent


def config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    if url:
        cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str) -> None:
    command.upgrade(config(url), "head")


@lru_cache
def head_revision() -> str | None:
    return ScriptDirectory.from_config(config()).get_current_head()
