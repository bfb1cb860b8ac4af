"""Blocks: a user never sees the blocked one again, and any open match between them closes.

"Blocked between these two" has one definition here (`blocked_pairs`), which the matching
sweep, the chat's send lock and typing all use.
"""

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Subquery, delete, exists, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from afterhours.errors import not_found, validation_error
from afterhours.safety.models import Block
from afterhours.users import User

log = logging.getLogger("afterhours.safety")

PairHook = Callable[..., Awaitable[None]]  # called as hook(db, a=..., b=...)


@dataclass(frozen=True)
class Reactions:
    """What other features do, in the same transaction, once one user blocks another
    (matching closes an open match between them). Wired in afterhours.wiring."""

    blocked: Sequence[PairHook] = ()


def blocked_pairs() -> Subquery:
    """Every (user_id, other_id) with a block between them, in either direction: each block
    appears both ways round, so filtering on `user_id` alone finds all of a user's blocks."""
    return (
        select(Block.blocker_id.label("user_id"), Block.blocked_id.label("other_id"))
        .union_all(select(Block.blocked_id, Block.blocker_id))
        .subquery("blocked_pairs")
    )


def blocked_between(a: Any, b: Any) -> ColumnElement[bool]:
    """Whether either of `a` and `b` (values or columns) has blocked the other."""
    pairs = blocked_pairs()
    return exists().where(pairs.c.user_id == a, pairs.c.other_id == b)


async def is_blocked_between(db: AsyncSession, a: uuid.UUID, b: uuid.UUID) -> bool:
    return bool(await db.scalar(select(blocked_between(a, b))))


async def block(
    db: AsyncSession, *, blocker_id: uuid.UUID, blocked_id: uuid.UUID, reactions: Reactions
) -> None:
    if blocker_id == blocked_id:
        raise validation_error("userId", "You cannot block yourself")
    if await db.get(User, blocked_id) is None:
        raise not_found("User")
    await db.execute(
        insert(Block).values(blocker_id=blocker_id, blocked_id=blocked_id).on_conflict_do_nothing()
    )
    for react in reactions.blocked:
        await react(db, a=blocker_id, b=blocked_id)
    log.info("user_blocked blocker_id=%s blocked_id=%s", blocker_id, blocked_id)


async def unblock(db: AsyncSession, *, blocker_id: uuid.UUID, blocked_id: uuid.UUID) -> None:
    result = await db.execute(
        delete(Block).where(Block.blocker_id == blocker_id, Block.blocked_id == blocked_id)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise not_found("Block")
