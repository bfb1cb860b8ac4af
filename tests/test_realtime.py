"""The event log: seqs and stored payloads, for small batches (INSERT) and large ones (COPY)."""

import uuid

import pytest

from afterhours import realtime
from afterhours.db import Database
from afterhours.settings import Settings
from afterhours.users import ensure_user

ODD = 'Zoë \\ "q" \t\n 🙂 \\n \\\\'


@pytest.mark.parametrize("count", [3, realtime.COPY_FROM + 10])
async def test_events_are_stored_in_order_with_their_exact_payload(
    base_settings: Settings, count: int
) -> None:
    assert base_settings.database_url
    db = Database(base_settings.database_url)  # no outbox: store only
    user = uuid.uuid4()
    try:
        async with db.transaction() as session:
            await ensure_user(session, user_id=user, fingerprint_hash=None)
            payloads = [{"n": n, "text": ODD} for n in range(count)]
            seqs = await realtime.emit_payloads(
                session, [(user, "after_hours:test", p) for p in payloads]
            )
        assert seqs == list(range(1, count + 1))
        async with db.sessionmaker() as session:
            stored = await realtime.events_after(session, user_id=user, after=0, limit=500)
        assert [(e.seq, e.event, e.data) for e in stored] == [
            (n + 1, "after_hours:test", p) for n, p in enumerate(payloads)
        ]
    finally:
        await db.dispose()
