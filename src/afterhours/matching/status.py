"""A match's status as of now, and the chat's view of its match.

The stored status changes when something closes the match (a job, most often); the database
knows before that whether the match's time is up (rule 1 of docs/architecture.md). An open
match reads closed from the moment a participant's session is over (`ended`), or, still
pending, once its auto-decline deadline has passed (`expired`): accepting, declining, saving,
sending, typing and reading all go by this status, so none waits for a job. A saved match
outlives its sessions and keeps its status.
"""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    DateTime,
    String,
    Uuid,
    and_,
    bindparam,
    case,
    func,
    literal_column,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from afterhours import clock
from afterhours.db import bulk_sql, execute_bulk
from afterhours.matching.models import OPEN_STATUSES, Match, Participant
from afterhours.safety import service as safety
from afterhours.sessions import service as sessions
from afterhours.sessions.service import Session

# Statements that ask for the status as of now take it as this parameter (`{"now": ...}`).
NOW = bindparam("now", type_=DateTime(timezone=True))


def _text(value: str) -> ColumnElement[str]:
    # A literal, not a parameter: CHAT_LOCK is compiled once, with named parameters only.
    return literal_column(f"'{value}'", String)


def status_at(
    now: ColumnElement[datetime], *, sessions_on: ColumnElement[bool]
) -> ColumnElement[str]:
    """`Match.status` as of `now`, `sessions_on` telling whether both participants' sessions
    are (sessions_on_at, or a join of them): what an open match will be closed as, once its
    time is up."""
    return case(
        (and_(Match.status == _text("pending"), Match.auto_decline_at <= now), _text("expired")),
        (
            and_(Match.status.in_([_text(s) for s in OPEN_STATUSES]), ~sessions_on),
            _text("ended"),
        ),
        else_=Match.status,
    )


def sessions_on_at(now: ColumnElement[datetime]) -> ColumnElement[bool]:
    """Both of the match's participants are in their sessions at `now` (for a read of one
    match; CHAT_LOCK, which reads many, joins the two sessions instead)."""
    on = (
        select(func.count())
        .select_from(Participant)
        .join(Session, and_(Session.id == Participant.session_id, sessions.is_live(now)))
        .where(Participant.match_id == Match.id)
        .scalar_subquery()
    )
    return on == literal_column("2")


class ChatState(NamedTuple):
    """A match as a message sent in it finds it, under the match's row lock."""

    status: str  # as of now (status_at)
    other: uuid.UUID
    blocked: bool  # a saved match whose participants have since blocked one another


def _chat_lock_statement() -> str:
    me, them = aliased(Participant), aliased(Participant)
    my_session, their_session = aliased(Session), aliased(Session)
    sends = (
        func.unnest(
            bindparam("matches", type_=ARRAY(Uuid)), bindparam("senders", type_=ARRAY(Uuid))
        )
        .table_valued("match_id", "sender", with_ordinality="i")
        .render_derived(name="s")
    )
    both_on = and_(my_session.id.is_not(None), their_session.id.is_not(None))
    stmt = (
        select(
            sends.c.i,
            status_at(NOW, sessions_on=both_on),
            them.user_id,
            and_(
                Match.status == _text("saved"),
                safety.blocked_between(sends.c.sender, them.user_id),
            ),
        )
        .select_from(sends)
        .join(Match, Match.id == sends.c.match_id)
        .join(me, and_(me.match_id == Match.id, me.user_id == sends.c.sender))
        .join(them, and_(them.match_id == Match.id, them.user_id != sends.c.sender))
        .outerjoin(
            my_session,
            and_(my_session.id == me.session_id, sessions.is_live(NOW, my_session)),
        )
        .outerjoin(
            their_session,
            and_(their_session.id == them.session_id, sessions.is_live(NOW, their_session)),
        )
        .order_by(Match.id)
        .with_for_update(of=Match)
    )
    return bulk_sql(stmt)


CHAT_LOCK = _chat_lock_statement()


async def lock_for_chat(
    db: AsyncSession, sends: Sequence[tuple[uuid.UUID, uuid.UUID]]
) -> dict[int, ChatState]:
    """For each (match id, sender) whose sender is in that match, by index: the match as its
    chat sees it. One statement; it locks the matches' rows in id order, so concurrent batches
    queue rather than deadlock, and messages stored under the lock keep one order."""
    rows = await execute_bulk(
        db,
        CHAT_LOCK,
        {
            "matches": [m for m, _ in sends],
            "senders": [s for _, s in sends],
            "now": clock.now(),
        },
    )
    return {i - 1: ChatState(status, other, blocked) for i, status, other, blocked in rows}
