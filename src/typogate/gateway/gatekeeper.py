"""The one enforcement path: decide, record, hold, notify.

Every adapter (policy service, milter, proxy) hands each recipient to its
:class:`Gatekeeper` and turns the :class:`Decision` into its own protocol's answer
(``answers``); what is decided, recorded, held and told to the sender is the same whatever
the protocol.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import ip_address

from typogate.domains import InvalidAddress, writable_form
from typogate.gateway import answers
from typogate.gateway.envelope import Envelope
from typogate.gateway.logfmt import logfmt
from typogate.gateway.notice import NoticeSender
from typogate.gateway.postfix_queue import valid_queue_id
from typogate.policy import Guard, Verdict
from typogate.policy import verdict as reasons
from typogate.store.journal import HeldMessage, Journal, VerdictEvent
from typogate.vocabulary import Action, Adapter, Evidence, HoldSource, Mode, severity

log = logging.getLogger(__name__)

# The actions under which the message goes out: a warning delivers it, with a header.
_DELIVERED = frozenset({Action.ALLOW, Action.WARN})


@dataclass(frozen=True, slots=True)
class Decision:
    """A verdict and the action the adapter carries out (in audit mode always allow)."""

    verdict: Verdict
    action: Action


# Holds waiting for the store at once: beyond, a hold is answered with a temporary failure
# at once. A store that stops answering then keeps this many threads, and no more, however
# many holds a sender asks for; and fewer than the policy service's executor has (six on
# two cores), so its other holds never queue behind them.
_RECORDING_AT_ONCE = 4


class _Answer:
    """Which came first for one hold: its record (the answer is the hold) or the deadline
    (the answer is a temporary failure, and a record made later holds nothing)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: bool | None = None  # None: neither came yet

    def held(self) -> bool:
        """The record is made: whether the hold is still the answer."""
        return self._first(True)

    def refused(self) -> bool:
        """The deadline passed: whether the temporary failure is still the answer."""
        return not self._first(False)

    def _first(self, held: bool) -> bool:
        """Whether the hold is the answer, ``held`` deciding if nothing did before."""
        with self._lock:
            if self._held is None:
                self._held = held
            return self._held


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
        hold_seconds: float = 5.0,
    ) -> None:
        """``hold_seconds``: how long :meth:`hold` waits for the journal's record."""
        self.guard = guard
        self.adapter = adapter
        self.mode = mode
        self.journal = journal
        self.notices = notices
        self.hold_seconds = hold_seconds
        self._recording = threading.BoundedSemaphore(_RECORDING_AT_ONCE)
        self._trusted_client = self._trusted_clients(guard)

    def use(self, guard: Guard, mode: Mode) -> None:
        """Judge with ``guard`` in ``mode`` from the next recipient on (a reload): the new
        Guard is complete before it is handed over, and the swap is one assignment."""
        self._trusted_client = self._trusted_clients(guard)
        self.guard, self.mode = guard, mode

    @staticmethod
    def _trusted_clients(guard: Guard) -> Callable[[str], bool]:
        """Whether a client address is in ``guard``'s ``gateway.trusted_networks``, cached:
        a gateway hears from few clients, and parsing the address cost more than judging."""
        networks = tuple(guard.config.gateway.trusted_networks)

        @lru_cache(maxsize=4096)
        def trusted(address: str) -> bool:
            try:
                client = ip_address(address.removeprefix("IPv6:"))
            except ValueError:
                return False
            return any(client in network for network in networks)

        return trusted

    def _checked(self, envelope: Envelope) -> Envelope:
        """``envelope`` with a queue id that is not Postfix's syntax dropped (and logged):
        Postfix never sends one, so the request was forged or garbled, and such an id must
        never reach the store, a release link or ``postsuper``."""
        if envelope.queue_id is None or valid_queue_id(envelope.queue_id):
            return envelope
        log.warning(
            "%s: queue_id %r is not a Postfix queue id: ignored (a forged request?)",
            self.adapter,
            answers.one_line(envelope.queue_id, 80),
        )
        return dataclasses.replace(envelope, queue_id=None)

    def decide(self, recipient: str, envelope: Envelope, *, learn: bool = True) -> Decision:
        """Judge where mail to one recipient goes and record the verdict; one that lets the
        message out (allowed, or warned about) teaches the Guard at once (the store counts it
        too): the sender wrote there, so what the domain answers is a reply. With ``learn``
        false it teaches nothing yet: the adapter learns only later whether the message went
        out, and says so with :meth:`delivered`.

        The destination is judged as Postfix delivers it, whatever the local part looks
        like (:meth:`Guard.evaluate`); the sender's own domain and relationships count only
        for a sender that can be believed (:meth:`believes`). Raises
        :class:`~typogate.InvalidAddress` for an address whose destination cannot be read:
        answer it with :meth:`unreadable`, never with a pass.
        """
        verdict, envelope, believed = self._judged(
            recipient, envelope, envelope.shown_as(recipient)
        )
        decision = self._decided(verdict, envelope, believed)
        if learn:
            self._taught([decision], envelope.sender, believed)
        return decision

    def reconsidered(self, recipient: str, envelope: Envelope, first: Decision) -> Decision:
        """``first``, the decision on ``recipient`` made before the message's headers came
        (the proxy answers RCPT before DATA), or where the display name the message shows
        the recipient under (``envelope.shown``) makes it an alert that ``first`` was not,
        that decision, recorded and told as :meth:`decide` does. Raises
        :class:`~typogate.InvalidAddress` as :meth:`decide` does."""
        shown = envelope.shown_as(recipient)
        if shown is None:  # nearly every message: no name with an @-sign in it
            return first
        verdict, envelope, believed = self._judged(recipient, envelope, shown)
        if severity(verdict.action) <= severity(first.verdict.action):
            return first
        return self._decided(verdict, envelope, believed)

    def delivered(self, decisions: list[Decision], envelope: Envelope) -> None:
        """What a message that went out to the recipients of ``decisions`` teaches: each one
        it was let out to (allowed, or warned about) is a domain its sender wrote to."""
        self._taught(decisions, envelope.sender, self.believes(envelope))

    def _judged(
        self, recipient: str, envelope: Envelope, shown: str | None
    ) -> tuple[Verdict, Envelope, bool]:
        """The verdict on ``recipient`` shown under ``shown``, the envelope as checked
        (:meth:`_checked`), and whether its sender is believed."""
        envelope = self._checked(envelope)
        believed = self.believes(envelope)
        verdict = self.guard.evaluate(recipient, envelope.sender, vouched=believed, shown_as=shown)
        return verdict, envelope, believed

    def _taught(self, decisions: list[Decision], sender: str | None, believed: bool) -> None:
        """Learn from each of ``decisions`` that let mail out to its recipient."""
        if not sender:
            return
        for decision in decisions:
            if decision.action in _DELIVERED:
                self._learn(decision.verdict, sender, believed)

    def _decided(self, verdict: Verdict, envelope: Envelope, believed: bool) -> Decision:
        """The decision ``verdict`` makes in this mode, recorded, logged and told to the
        sender of ``envelope`` (a warning's notice)."""
        action = Action.ALLOW if self.mode is Mode.AUDIT else verdict.action
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
        if verdict.is_alert:
            self._log_verdict(verdict, envelope)
        if (
            action is Action.WARN
            and self.notices is not None
            and self.guard.config.gateway.warn_notices
        ):
            confirmable = self._confirmable([verdict], believed)
            self.notices.warned([verdict], envelope, confirmable=confirmable)
        return Decision(verdict, action)

    def _learn(self, verdict: Verdict, sender: str, believed: bool) -> None:
        """What a delivered message teaches: a believed sender delivered to the domain; mail
        from outside to one of our own domains was received from the sender's domain. A claim
        nobody vouched for teaches nothing (a forged sender must not build relationships)."""
        if believed:
            party, domain, evidence = sender, verdict.domain, Evidence.SENT
        elif verdict.reason == reasons.ALLOWED_OWN_HOST and "@" in sender:
            party, domain = verdict.recipient, sender.rpartition("@")[2].lower()
            evidence = Evidence.RECEIVED
        else:
            return
        if self.guard.observe(party, domain, evidence) and self.journal is not None:
            self.journal.observe(party, domain, evidence)

    def unreadable(self, recipient: str, error: InvalidAddress) -> answers.Refusal | None:
        """The refusal for a recipient whose destination cannot be read, and its log line:
        ``gateway.unreadable_address`` (``450 4.1.3`` by default, ``550 5.1.3`` for
        ``reject``); ``None`` in audit mode, which only logs."""
        refusal = answers.unreadable(error, self.guard.config.gateway.unreadable_address)
        audit = self.mode is Mode.AUDIT
        log.warning(
            "%s: cannot read where %r goes: %s; answered %s",
            self.adapter,
            recipient,
            error.reason,
            "nothing (audit mode)" if audit else f"{refusal.code} (gateway.unreadable_address)",
        )
        return None if audit else refusal

    def believes(self, envelope: Envelope) -> bool:
        """Whether the envelope sender can be believed: the client authenticated (SASL) or
        connects from ``gateway.trusted_networks``. An envelope claim alone never makes
        the recipient's domain the sender's own, nor lets its relationships allow one."""
        if envelope.sasl_username:
            return True
        return self._trusted_client(envelope.client_address or "")

    def _log_verdict(self, verdict: Verdict, envelope: Envelope) -> None:
        """The one log line of a verdict that is not allow (docs/operations.md)."""
        log.info(
            logfmt(
                event="verdict",
                adapter=self.adapter,
                mode=self.mode,
                action=verdict.action,
                recipient=verdict.recipient,
                reason=verdict.reason,
                suggestion=verdict.suggestion,
                alternatives=verdict.alternatives or None,
                score=verdict.score,
                rule=verdict.rule,
                risk=verdict.risk,
                sender=envelope.sender,
                sasl_username=envelope.sasl_username,
                client=envelope.client_address,
                queue_id=envelope.queue_id,
            )
        )

    def hold(
        self, held: list[Verdict], envelope: Envelope, source: HoldSource
    ) -> HeldMessage | None:
        """Record a held message durably, then have the sender told (in the background).

        None when the journal has not recorded it within ``hold_seconds`` (a database that
        stops answering): the adapter answers with a temporary failure, and a record made
        after that is voided, with nobody told, so that the client's retry is the one hold.
        Raises whatever the journal raises when it cannot keep the hold: a hold that is not
        recorded cannot be released, so the adapter must not acknowledge it.
        """
        recipients = ", ".join(verdict.recipient for verdict in held)  # for the log
        if not self._recording.acquire(blocking=False):
            log.error(
                "%s: %d holds already wait for the store: the hold of %s answered with a "
                "temporary failure",
                self.adapter,
                _RECORDING_AT_ONCE,
                recipients,
            )
            return None
        answer = _Answer()
        recorded: Future[HeldMessage] = Future()

        def record() -> None:
            try:
                recorded.set_result(self._record(held, envelope, source, answer.held))
            except BaseException as error:  # raised again in the adapter's thread
                recorded.set_exception(error)
            finally:
                self._recording.release()

        # Its own thread: the adapter's waits no longer than hold_seconds for it.
        threading.Thread(target=record, name="hold", daemon=True).start()
        try:
            return recorded.result(timeout=self.hold_seconds)
        except FutureTimeout:
            if answer.refused():
                log.error(
                    "%s: the store took over %g s to record the hold of %s: answered "
                    "with a temporary failure",
                    self.adapter,
                    self.hold_seconds,
                    recipients,
                )
                return None
            return recorded.result()  # recorded just in time: HOLD is the answer

    def _record(
        self,
        held: list[Verdict],
        envelope: Envelope,
        source: HoldSource,
        still_held: Callable[[], bool],
    ) -> HeldMessage:
        """:meth:`hold`'s record and notice; ``still_held`` is asked once the record is
        made: False when the adapter has answered without it, and then it is voided."""
        envelope = self._checked(envelope)
        record = HeldMessage(
            hold_id=uuid.uuid4().hex,
            source=source,
            sender=None if envelope.sender is None else writable_form(envelope.sender),
            recipients=tuple(v.recipient for v in held),
            reasons=tuple(v.reason for v in held),
            suggestions=tuple(v.suggestion for v in held),
            queue_id=envelope.queue_id,
        )
        if self.journal is not None:
            self.journal.hold(record)
        if not still_held():
            if self.journal is not None:
                why = "recorded after the adapter had answered without it"
                self.journal.void_hold(record.hold_id, why)
            log.error(
                "%s: the hold of %s was recorded after the answer went without it; voided",
                self.adapter,
                ", ".join(record.recipients),
            )
            return record
        log.info(
            logfmt(
                event="hold",
                adapter=self.adapter,
                hold=record.hold_id,
                source=source,
                recipients=record.recipients,
                sender=record.sender,
                queue_id=record.queue_id,
                notice="queued" if self.notices is not None and record.sender else "none",
            )
        )
        if self.notices is not None:
            self.notices.held(record, held, envelope)
        return record

    def removed(self, removed: list[Verdict], envelope: Envelope, delivered: list[str]) -> None:
        """Log each recipient removed from a message (Postfix logs nothing for a milter's
        removal) and have the sender told, in one notice, that it went to ``delivered``."""
        notice = "queued" if self.notices is not None and envelope.sender else "none"
        for verdict in removed:
            log.info(
                logfmt(
                    event="remove",
                    adapter=self.adapter,
                    recipient=verdict.recipient,
                    reason=verdict.reason,
                    suggestion=verdict.suggestion,
                    sender=envelope.sender,
                    queue_id=envelope.queue_id,
                    notice=notice,
                )
            )
        if self.notices is not None:
            confirmable = self._confirmable(removed, self.believes(envelope))
            self.notices.removed(removed, envelope, delivered, confirmable=confirmable)

    def _confirmable(self, verdicts: list[Verdict], believed: bool) -> bool:
        """Whether a notice about ``verdicts`` may carry the confirm link: for a sender
        typogate believes, and only where its word lifts every one of them (one link for
        one notice: an alert it would not lift must not read as lifted)."""
        return believed and all(self.guard.lifted_by_release(verdict) for verdict in verdicts)
