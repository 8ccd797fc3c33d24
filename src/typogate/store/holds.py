"""Held messages in the store: recorded when held, read by people, moved between states
with an audit trail, and the senders' one-use release links.

An action on a held message is recorded as an intent before Postfix is asked to carry it
out (:meth:`Holds.intend`) and finished with the state Postfix reports
(:meth:`Holds.finish`): a crash in between leaves the intent, which the next start finishes
against the real queue, so the store never says "held" for a message Postfix released.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from typogate.errors import TypogateError
from typogate.store.journal import HeldMessage
from typogate.store.models import HoldActionRow, HoldIntentRow, HoldRow, SpentLinkRow
from typogate.store.records import HoldIntent, HoldRecord, SenderWord, TrailEntry, utc
from typogate.vocabulary import HoldAction, HoldSource, HoldState


class ActionUnderWay(TypogateError, RuntimeError):
    """Another action on the same held message is recorded and not yet finished."""


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

    def void(self, hold_id: str) -> None:
        """Delete a hold just added that holds no message (nothing acted on it yet)."""
        with Session(self.engine) as session, session.begin():
            row = session.get(HoldRow, hold_id)
            if row is not None:
                session.delete(row)

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

    def intend(self, intent: HoldIntent) -> HoldRecord | None:
        """Record ``intent`` before it is carried out in the MTA, and bind the hold to the
        intent's queue id; one intent per hold at a time (two people releasing at once do
        it once).

        Returns the hold as it was; None when there is no such hold. The intent is
        recorded only when the hold was still held; otherwise nothing changes. Raises
        :class:`ActionUnderWay` when another action on the hold is not finished.
        """
        try:
            with Session(self.engine) as session, session.begin():
                row = session.get(HoldRow, intent.hold_id, with_for_update=True)
                if row is None:
                    return None
                before = _record(row)
                if before.state is not HoldState.HELD:
                    return before
                row.queue_id = intent.queue_id
                session.add(
                    HoldIntentRow(
                        hold_id=intent.hold_id,
                        action=intent.action.value,
                        queue_id=intent.queue_id,
                        actor=intent.actor,
                        why=intent.why,
                        time=intent.time,
                        owner=intent.owner,
                    )
                )
        except IntegrityError:
            raise ActionUnderWay(f"another action on hold {intent.hold_id} is under way") from None
        return before

    def finish(self, intent: HoldIntent, state: HoldState, outcome: str) -> None:
        """What Postfix did with an intended action: the hold's new state, the audit trail
        line (who and why from the intent), and the intent is done, in one transaction.
        Other holds of the same message (one per held recipient: the same queue id and
        sender) move with it."""
        with Session(self.engine) as session, session.begin():
            row = session.get(HoldRow, intent.hold_id, with_for_update=True)
            if row is None:
                return
            siblings = select(HoldRow).where(
                HoldRow.queue_id == intent.queue_id,
                HoldRow.sender == row.sender,
                HoldRow.state == HoldState.HELD.value,
                HoldRow.hold_id != intent.hold_id,
            )
            for other in session.scalars(siblings.with_for_update()):
                other.state = state.value
                session.add(
                    _trail_row(
                        other.hold_id,
                        intent.action,
                        intent.actor,
                        intent.why,
                        f"{outcome} (with hold {intent.hold_id}: the same message)",
                    )
                )
            if row.state == HoldState.HELD.value:
                row.state = state.value
            session.add(
                _trail_row(intent.hold_id, intent.action, intent.actor, intent.why, outcome)
            )
            pending = session.get(HoldIntentRow, intent.hold_id)
            if pending is not None:
                session.delete(pending)

    def abandon(self, intent: HoldIntent) -> None:
        """Forget an intent Postfix did not carry out (nothing changed in the MTA)."""
        with Session(self.engine) as session, session.begin():
            pending = session.get(HoldIntentRow, intent.hold_id)
            if pending is not None:
                session.delete(pending)

    def intents(self) -> list[HoldIntent]:
        """Intended actions not yet finished (a crash came between), oldest first."""
        query = select(HoldIntentRow).order_by(HoldIntentRow.time)
        with Session(self.engine) as session:
            return [
                HoldIntent(
                    r.hold_id,
                    HoldAction(r.action),
                    r.queue_id,
                    r.actor,
                    r.why,
                    utc(r.time),
                    r.owner,
                )
                for r in session.scalars(query)
            ]

    def note(self, hold_id: str, action: HoldAction, actor: str, why: str, outcome: str) -> None:
        """Add a line to the audit trail for an action that changed nothing."""
        with Session(self.engine) as session, session.begin():
            session.add(_trail_row(hold_id, action, actor, why, outcome))

    def queue_ids_taken(self, hold_id: str) -> set[str]:
        """The queue ids bound to holds other than ``hold_id``."""
        query = select(HoldRow.queue_id).where(
            HoldRow.hold_id != hold_id, HoldRow.queue_id.is_not(None)
        )
        with Session(self.engine) as session:
            return {queue_id for queue_id in session.scalars(query) if queue_id}

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
        """Whether the sender's link (release or confirm) with this nonce was used."""
        with Session(self.engine) as session:
            return session.get(SpentLinkRow, nonce) is not None

    def unspend_link(self, nonce: str) -> None:
        """Make a used link work again: what using it should have done was not done."""
        with Session(self.engine) as session, session.begin():
            session.execute(delete(SpentLinkRow).where(SpentLinkRow.nonce == nonce))

    def spend_link(self, nonce: str, hold_id: str, sender: str, recipients: Sequence[str]) -> bool:
        """Mark ``sender``'s link used (``hold_id`` "" for a confirm link), for
        ``recipients``; False when it was used before (each works once)."""
        row = SpentLinkRow(
            nonce=nonce,
            hold_id=hold_id,
            time=datetime.now(UTC),
            sender=sender,
            recipients=json.dumps(list(recipients)),
        )
        try:
            with Session(self.engine) as session, session.begin():
                session.add(row)
        except IntegrityError:
            return False
        return True

    def said(self, limit: int = 20) -> list[SenderWord]:
        """What senders said with their links, newest first: each release of a held
        message and each confirmation of a warning."""
        query = (
            select(SpentLinkRow)
            .where(SpentLinkRow.sender != "")
            .order_by(SpentLinkRow.time.desc(), SpentLinkRow.nonce)
            .limit(limit)
        )
        with Session(self.engine) as session:
            return [
                SenderWord(utc(r.time), r.sender, json.loads(r.recipients), r.hold_id or None)
                for r in session.scalars(query)
            ]


def _trail_row(
    hold_id: str, action: HoldAction, actor: str, why: str, outcome: str
) -> HoldActionRow:
    return HoldActionRow(
        hold_id=hold_id,
        action=action.value,
        actor=actor,
        why=why,
        outcome=outcome,
        time=datetime.now(UTC),
    )


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
