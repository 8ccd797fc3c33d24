"""Held messages in the store: recorded when held, read by people, moved between states
with an audit trail, and the senders' one-use release links."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from typogate.store.journal import HeldMessage
from typogate.store.models import HoldActionRow, HoldRow, SpentLinkRow
from typogate.store.records import HoldRecord, TrailEntry, utc
from typogate.vocabulary import HoldAction, HoldSource, HoldState

# What carrying out an action on a held message did: the state it is in afterwards, and a
# sentence for people (kept in the audit trail).
Done = tuple[HoldState, str]


class Holds:
    """The held messages of one store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, held: HeldMessage) -> None:
        """Commit a held message before returning; raises if the database cannot take it."""
        row = HoldRow(
            hold_id=held.hold_id,
            time=held.time,
            source=held.source.value,
            sender=held.sender,
            recipients=json.dumps(list(held.recipients)),
            reasons=json.dumps(list(held.reasons)),
            suggestions=json.dumps(list(held.suggestions)),
            queue_id=held.queue_id,
            message_path=held.message_path,
            state=HoldState.HELD.value,
            subject=held.subject,
            written=held.written,
            all_recipients=json.dumps(list(held.all_recipients)) if held.all_recipients else None,
        )
        with Session(self.engine) as session, session.begin():
            session.add(row)

    def in_state(
        self, state: HoldState = HoldState.HELD, limit: int | None = None
    ) -> list[HoldRecord]:
        """Held messages in ``state``, oldest first (at most ``limit``)."""
        query = select(HoldRow).where(HoldRow.state == state.value).order_by(HoldRow.time)
        with Session(self.engine) as session:
            return [_record(row) for row in session.scalars(query.limit(limit))]

    def get(self, hold_id: str) -> HoldRecord | None:
        """One held message (any state), or None."""
        with Session(self.engine) as session:
            row = session.get(HoldRow, hold_id)
            return None if row is None else _record(row)

    def describe(
        self, hold_id: str, subject: str, written: datetime | None, all_recipients: list[str]
    ) -> HoldRecord | None:
        """Keep what the message itself says (read from the MTA's queue file once): its
        subject ("" for none), its Date header and every recipient. The hold afterwards."""
        with Session(self.engine) as session, session.begin():
            row = session.get(HoldRow, hold_id)
            if row is None:
                return None
            row.subject, row.written = subject, written
            row.all_recipients = json.dumps(all_recipients)
            return _record(row)

    def count_by_state(self) -> dict[HoldState, int]:
        """How many holds are in each state."""
        query = select(HoldRow.state, func.count()).group_by(HoldRow.state)
        with Session(self.engine) as session:
            return {HoldState(state): int(n) for state, n in session.execute(query)}

    def act(
        self,
        hold_id: str,
        action: HoldAction,
        actor: str,
        why: str,
        carry_out: Callable[[HoldRecord], Done],
    ) -> tuple[HoldRecord, HoldState, str] | None:
        """Carry out ``action`` on a message that is still held, under a row lock (two
        people releasing at once do it once), and write the audit trail.

        ``carry_out`` does the work in the MTA and says what came of it; it is not called
        when the message is no longer held (the trail then says what it was). Returns the
        hold as it was, its state afterwards and the sentence; None when there is no such
        hold. An exception from ``carry_out`` changes nothing and is raised.
        """
        with Session(self.engine) as session, session.begin():
            row = session.get(HoldRow, hold_id, with_for_update=True)
            if row is None:
                return None
            before = _record(row)
            if before.state is HoldState.HELD:
                state, sentence = carry_out(before)
                row.state = state.value
            else:
                state, sentence = before.state, f"hold {hold_id} was already {before.state}"
            session.add(
                HoldActionRow(
                    hold_id=hold_id,
                    action=action.value,
                    actor=actor,
                    why=why,
                    outcome=sentence,
                    time=datetime.now(UTC),
                )
            )
            return before, state, sentence

    def trail(self, hold_id: str | None = None) -> list[TrailEntry]:
        """The audit trail, oldest first (of one hold, or of all)."""
        query = select(HoldActionRow).order_by(HoldActionRow.id)
        if hold_id is not None:
            query = query.where(HoldActionRow.hold_id == hold_id)
        with Session(self.engine) as session:
            return [
                TrailEntry(r.hold_id, HoldAction(r.action), r.actor, r.why, r.outcome, utc(r.time))
                for r in session.scalars(query)
            ]

    def link_spent(self, nonce: str) -> bool:
        """Whether the release link with this nonce was used already."""
        with Session(self.engine) as session:
            return session.get(SpentLinkRow, nonce) is not None

    def spend_link(self, nonce: str, hold_id: str) -> bool:
        """Mark a release link used; False when it was used before (each works once)."""
        try:
            with Session(self.engine) as session, session.begin():
                session.add(SpentLinkRow(nonce=nonce, hold_id=hold_id, time=datetime.now(UTC)))
        except IntegrityError:
            return False
        return True


def _record(row: HoldRow) -> HoldRecord:
    return HoldRecord(
        hold_id=row.hold_id,
        time=utc(row.time),
        source=HoldSource(row.source),
        sender=row.sender,
        recipients=json.loads(row.recipients),
        reasons=json.loads(row.reasons),
        suggestions=json.loads(row.suggestions),
        queue_id=row.queue_id,
        message_path=row.message_path,
        state=HoldState(row.state),
        subject=row.subject,
        written=utc(row.written) if row.written is not None else None,
        all_recipients=json.loads(row.all_recipients) if row.all_recipients else [],
    )
