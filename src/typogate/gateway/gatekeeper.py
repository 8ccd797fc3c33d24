"""The one enforcement path: decide, record, hold, notify.

Every adapter (policy service, milter, proxy) hands each recipient to its
:class:`Gatekeeper` and turns the :class:`Decision` into its own protocol's answer
(``answers``); what is decided, recorded, held and told to the sender is the same whatever
the protocol.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from typogate.gateway.notice import NoticeSender
from typogate.policy import Guard, Verdict
from typogate.store.journal import HeldMessage, Journal, VerdictEvent
from typogate.vocabulary import Action, Adapter, Evidence, HoldSource, Mode


@dataclass(frozen=True, slots=True)
class Envelope:
    """What the adapter knows about the message when it asks: who sends, from where."""

    sender: str | None = None
    sasl_username: str | None = None
    queue_id: str | None = None
    client_address: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """A verdict and the action the adapter carries out (in audit mode always allow)."""

    verdict: Verdict
    action: Action


class Gatekeeper:
    """Decides for one adapter with the shared Guard, records every verdict in the journal,
    records holds durably and has the senders told.

    Safe to share between threads: the Guard is, the journal's ``record`` is, and notices
    are handed to the sender's own thread.
    """

    def __init__(
        self,
        guard: Guard,
        adapter: Adapter,
        *,
        mode: Mode = Mode.ENFORCE,
        journal: Journal | None = None,
        notices: NoticeSender | None = None,
    ) -> None:
        self.guard = guard
        self.adapter = adapter
        self.mode = mode
        self.journal = journal
        self.notices = notices

    def decide(self, recipient: str, envelope: Envelope) -> Decision:
        """Judge one recipient and record the verdict; an allowed one teaches the Guard at
        once (the store counts it too). Raises :class:`~typogate.InvalidAddress` for an
        address that cannot be read."""
        verdict = self.guard.evaluate(recipient, envelope.sender)
        if verdict.action is Action.ALLOW and envelope.sender:
            self.guard.observe(envelope.sender, verdict.domain, Evidence.SENT)
        if self.journal is not None:
            self.journal.record(
                VerdictEvent.of(
                    verdict,
                    self.adapter,
                    self.mode,
                    sender=envelope.sender,
                    sasl_username=envelope.sasl_username,
                    queue_id=envelope.queue_id,
                    client_address=envelope.client_address,
                )
            )
        action = Action.ALLOW if self.mode is Mode.AUDIT else verdict.action
        return Decision(verdict, action)

    def hold(self, held: list[Verdict], envelope: Envelope, source: HoldSource) -> HeldMessage:
        """Record a held message durably, then have the sender told (in the background).

        Raises whatever the journal raises when it cannot keep the hold: a hold that is not
        recorded cannot be released, so the adapter must not acknowledge it.
        """
        record = HeldMessage(
            hold_id=uuid.uuid4().hex,
            source=source,
            sender=envelope.sender,
            recipients=tuple(v.recipient for v in held),
            reasons=tuple(v.reason for v in held),
            suggestions=tuple(v.suggestion for v in held),
            queue_id=envelope.queue_id,
        )
        if self.journal is not None:
            self.journal.hold(record)
        if self.notices is not None:
            self.notices.held(record, held[0])
        return record

    def removed(self, removed: list[Verdict], envelope: Envelope) -> None:
        """Have the sender told which recipients were removed from their message."""
        if self.notices is not None:
            for verdict in removed:
                self.notices.removed(verdict, envelope.sender, envelope.queue_id)
