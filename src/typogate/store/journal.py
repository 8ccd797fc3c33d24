"""The contract between the parts that decide (gateway, web) and the store that remembers.

Adapters hand each verdict to a :class:`Journal` as a :class:`VerdictEvent` (fire and
forget: batched, never blocking a verdict) and each held message as a :class:`HeldMessage`
(durable before the adapter answers the MTA: a hold that was acknowledged is never lost).
"""

from __future__ import annotations

import time as clock
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple, Protocol

from typogate.domains import writable_form
from typogate.policy import Verdict
from typogate.vocabulary import Adapter, Evidence, HoldSource, Mode

# The widths of the events table's text columns (store/models.py).
ADDRESS_LENGTH = 320
DOMAIN_LENGTH = 255
RULE_LENGTH = 128
SHORT_LENGTH = 64


def _now() -> datetime:
    return datetime.now(UTC)


class VerdictEvent(NamedTuple):
    """One verdict as it happened in the mail flow.

    A named tuple with the time as epoch seconds, not a dataclass with a datetime: the policy
    service makes one per recipient, and under load (bench/store.py) the dataclass and its
    datetime took about 10% of the service's throughput. ``time=None`` means "when recorded".
    """

    recipient: str
    domain: str
    action: str  # an Action's value (what was decided)
    reason: str
    adapter: str  # an Adapter's value
    mode: str = Mode.ENFORCE.value  # a Mode's value (audit: decided and logged, nothing changed)
    sender: str | None = None
    sasl_username: str | None = None
    suggestion: str | None = None
    score: float = 0.0
    rule: str = "model"
    queue_id: str | None = None
    client_address: str | None = None
    time: float | None = None  # seconds since the epoch

    @property
    def when(self) -> datetime:
        """The time as an aware UTC datetime (now, if the event has none yet)."""
        return datetime.fromtimestamp(clock.time() if self.time is None else self.time, UTC)

    @classmethod
    def of(
        cls,
        verdict: Verdict,
        adapter: Adapter,
        mode: Mode,
        sender: str | None = None,
        sasl_username: str | None = None,
        queue_id: str | None = None,
        client_address: str | None = None,
    ) -> VerdictEvent:
        """The event for ``verdict`` as decided by ``adapter``, with the sender,
        sasl_username, queue_id and client_address the adapter knows."""
        j = verdict.judgement  # positional, straight from the judgement: once per verdict
        # Each text at most its column's width, and text every database writes (a byte
        # that was not UTF-8, or a NUL, as U+FFFD): whatever a client sends, an event's
        # size is bounded, and no value makes the database refuse a whole batch.
        return cls(
            writable_form(verdict.recipient)[:ADDRESS_LENGTH],
            j.domain[:DOMAIN_LENGTH],
            j.action.value,
            j.reason,
            adapter.value,
            mode.value,
            None if sender is None else writable_form(sender)[:ADDRESS_LENGTH],
            None if sasl_username is None else writable_form(sasl_username)[:ADDRESS_LENGTH],
            j.suggestion,
            j.score,
            j.rule[:RULE_LENGTH],
            None if queue_id is None else queue_id[:SHORT_LENGTH],
            None if client_address is None else writable_form(client_address)[:SHORT_LENGTH],
            clock.time(),
        )


@dataclass(frozen=True, slots=True)
class HeldMessage:
    """A message typogate held: in Postfix's hold queue (``postfix-hold``) or its own
    quarantine (``milter-quarantine``, with the message stored at ``message_path``)."""

    hold_id: str
    source: HoldSource
    sender: str | None
    recipients: tuple[str, ...]
    reasons: tuple[str, ...]
    suggestions: tuple[str | None, ...]
    queue_id: str | None = None
    message_path: str | None = None
    time: datetime = field(default_factory=_now)
    # When the adapter has the message itself (the milter): its Subject and Date headers and
    # every envelope recipient, for the sender's release page. A Postfix hold at RCPT time
    # has none of them yet; the web reads them from the queue file when first shown.
    subject: str | None = None
    written: datetime | None = None
    all_recipients: tuple[str, ...] = ()


class Journal(Protocol):
    """Where adapters send what happened. The store implements it; tests may use a list."""

    def record(self, event: VerdictEvent) -> None:
        """Queue one verdict event; must return at once and never raise for a dead database."""

    def hold(self, held: HeldMessage) -> None:
        """Store a held message durably before returning (raise if that is impossible)."""

    def void_hold(self, hold_id: str, why: str) -> None:
        """Take back a hold recorded after its adapter answered without it (the store was
        too slow): no message is held under it (raise if that is impossible)."""

    def observe(self, party: str, domain: str, evidence: Evidence) -> None:
        """Queue evidence of a relationship (mail ``party`` sent to ``domain`` or received
        from it, a release); must return at once and never raise."""
