"""Blocks: a user never sees the blocked one again, and any open match between them closes."""

import logging
import uuid

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from afterhours.errors import not_found, validation_error
from afterhours.matching import service as matching
from afterhours.safety.models import Block
from afterhours.users import User

log = logging.getLogger("afterhours.safety")


async def block(db: AsyncSession, *, blocker_id: uuid.UUID, blocked_id: uuid.UUID) -> None:
    if blocker_id == blocked_id:
        raise validation_error("userId", "You cannot block yourself")
    if await db.get(User, blocked_id) is None:
        raise not_found("User")
    await db.execute(
        insert(Block).values(blocker_id=blocker_id, blocked_id=blocked_id).on_conflict_do_nothing()
    )
    await matching.close_open_match_between(
        db, a=blocker_id, b=blocked_id, status="blocked", reason="blocked"
    )
    log.info("user_blocked blocker_id=%s blocked_id=%s", blocker_id, blocked_id)


async def unblock(db: AsyncSession, *, blocker_id: uuid.UUID, blocked_id: uuid.UUID) -> None:
    result = await db.execute(
        delete(Block).where(Block.blocker_id == blocker_id, Block.blocked_id == blocked_id)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise not_found("Block")
