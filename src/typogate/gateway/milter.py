"""Milter (pymilter on Debian's libmilter): sees the whole message, so it also covers mail
submitted with sendmail(1), which never meets the policy service (``non_smtpd_milters``).

At end of message, per recipient verdict:
* reject: the recipient is removed (``delrcpt``) and the sender gets typogate's notice; when
  every recipient is rejected the message is refused (550), and for sendmail(1) mail Postfix
  then returns a standard RFC 3464 delivery status notification to the sender;
* hold: the whole message is quarantined (Postfix's hold queue) and recorded for release;
* warn: an ``X-Typogate`` header is added.
Audit mode decides and records but changes nothing. A milter that is down or slow gets
Postfix's ``milter_default_action`` (docs/postfix.md).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import Milter

from typogate.config import milter_address
from typogate.domains import InvalidAddress
from typogate.errors import CannotListen
from typogate.gateway import answers, controller
from typogate.gateway.envelope import SHOWING_HEADERS, Envelope, note_shown
from typogate.gateway.gatekeeper import Gatekeeper
from typogate.policy import Verdict
from typogate.vocabulary import Action, HoldSource

log = logging.getLogger(__name__)

_STOP_SECONDS = 10.0


@dataclass
class _Envelope:
    sender: str | None = None
    sasl_username: str | None = None
    recipients: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # the few a notice shows
    shown: dict[str, str] = field(default_factory=dict)  # recipient -> name with an @-sign


# The headers typogate's notice to the sender shows (or threads on).
_NOTICE_HEADERS = frozenset({"subject", "date", "message-id"})


def _bare(address: str) -> str:
    return address.strip().strip("<>").strip()


class TypogateMilter(Milter.Base):  # type: ignore[misc]
    """One instance per SMTP/pickup connection, created by pymilter's factory."""

    gatekeeper: Gatekeeper  # set by :func:`run` before the first connection

    def __init__(self) -> None:
        self.envelope = _Envelope()
        self.client_address: str | None = None

    def connect(self, hostname: str, family: Any, hostaddr: Any) -> int:
        # (address, port) for a network client: believed as sender if trusted
        if isinstance(hostaddr, tuple) and hostaddr:
            self.client_address = str(hostaddr[0])
        return Milter.CONTINUE

    def envfrom(self, sender: str, *params: Any) -> int:
        authenticated = self.getsymval("{auth_authen}") or None  # in Postfix's MAIL macros
        self.envelope = _Envelope(sender=_bare(sender) or None, sasl_username=authenticated)
        return Milter.CONTINUE

    def envrcpt(self, recipient: str, *params: Any) -> int:
        self.envelope.recipients.append(_bare(recipient))
        return Milter.CONTINUE

    def header(self, name: str, value: str) -> int:
        key = name.lower()
        if key in _NOTICE_HEADERS and key not in self.envelope.headers:
            self.envelope.headers[key] = value
        elif key in SHOWING_HEADERS:
            note_shown(self.envelope.shown, value)
        return Milter.CONTINUE

    def eom(self) -> int:
        headers = self.envelope.headers
        envelope = Envelope(
            sender=self.envelope.sender,
            sasl_username=self.envelope.sasl_username,
            queue_id=self.getsymval("i") or None,
            client_address=self.client_address,
            recipients=tuple(self.envelope.recipients),
            subject=headers.get("subject", ""),  # "": the message has none
            date=headers.get("date"),
            message_id=headers.get("message-id"),
            shown=tuple(self.envelope.shown.items()),
        )
        acting: list[Verdict] = []
        given: dict[int, str] = {}  # verdict -> the recipient as Postfix gave it
        for recipient in self.envelope.recipients:
            try:
                decision = self.gatekeeper.decide(recipient, envelope)
            except InvalidAddress as error:
                refusal = self.gatekeeper.unreadable(recipient, error)  # never a pass
                if refusal is None:
                    continue
                # One message: a recipient that cannot be read defers (or refuses) it all.
                self._reply(refusal)
                return Milter.TEMPFAIL if refusal.code < 500 else Milter.REJECT
            if decision.action is not Action.ALLOW:
                acting.append(decision.verdict)
                given[id(decision.verdict)] = recipient
        holds = [v for v in acting if v.action is Action.HOLD]
        rejects = [v for v in acting if v.action is Action.REJECT]
        if holds:
            return self._quarantine(holds, envelope)
        for verdict in acting:
            if verdict.action is Action.WARN:
                self.addheader(*answers.warning_header(verdict))
        if rejects and len(rejects) == len(self.envelope.recipients):
            self._reply(answers.refusal(rejects[0]))
            return Milter.REJECT
        removed = {given[id(verdict)] for verdict in rejects}
        for verdict in rejects:
            self.delrcpt(f"<{given[id(verdict)]}>")
            self.addheader(*answers.warning_header(verdict))
        if rejects:
            # Which ones are left is known here, in Postfix's spelling; the verdicts name
            # where mail goes (unquoted, mapped), which need not be spelled the same.
            delivered = [r for r in self.envelope.recipients if r not in removed]
            self.gatekeeper.removed(rejects, envelope, delivered)
        return Milter.ACCEPT

    def _reply(self, refusal: answers.Refusal) -> None:
        # libmilter reads the text as a printf format: a lone "%" (an admin's "100%") made
        # it refuse the text, and the message was deferred with pymilter's own words.
        self.setreply(str(refusal.code), refusal.status, refusal.text.replace("%", "%%"))

    def _quarantine(self, holds: list[Verdict], envelope: Envelope) -> int:
        try:
            held = self.gatekeeper.hold(holds, envelope, HoldSource.MILTER_QUARANTINE)
        except Exception as error:  # not releasable: let the client try again later
            log.error("milter: cannot record hold: %s", error)
            held = None
        if held is None:  # or not recorded within hold_record_seconds
            self.setreply("451", "4.3.0", "typogate cannot record the hold now; try later")
            return Milter.TEMPFAIL
        self.quarantine(answers.hold_reason(holds[0]))
        return Milter.ACCEPT


class MilterListener:
    """libmilter's loop on a thread of its own, a service of the gateway's controller.

    libmilter's listener waits in ``select`` for up to 5 s (``MI_CHK_TIME``) and holds
    its lock while it does, so ``smfi_stop`` alone takes that long to return. :meth:`stop`
    calls it on a helper thread and connects to the milter's own socket until the loop
    ends: the connection wakes the ``select``, and the milter stops at once.
    """

    def __init__(self, gatekeeper: Gatekeeper, socket_spec: str, timeout: int = 600) -> None:
        self.gatekeeper = gatekeeper
        self.socket_spec = socket_spec
        self.timeout = timeout
        # Set when libmilter's loop ended without being asked (it failed, or its own
        # signal thread took a stop signal): the process stops, with this reason.
        self.failure: str | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name="milter", daemon=True)

    def start(self) -> None:
        """Open the socket (raises :class:`CannotListen`), then serve on a thread."""
        TypogateMilter.gatekeeper = self.gatekeeper
        Milter.factory = TypogateMilter
        Milter.set_flags(Milter.ADDHDRS | Milter.DELRCPT | Milter.QUARANTINE)
        try:
            _register(self.socket_spec, self.timeout)
        except Milter.milter.error as error:
            # libmilter tells no more than "cannot opensocket" or "cannot start".
            why = f"libmilter: {error} (is the address in use?)"
            raise CannotListen("the milter", self.socket_spec, why) from None
        self._thread.start()
        _await_signal_thread()
        log.info("milter on %s (%s mode)", self.socket_spec, self.gatekeeper.mode)

    def stop(self) -> None:
        """Stop libmilter's loop (within a second; a session in progress ends with the
        process)."""
        if not self._thread.is_alive():
            return
        self._stopping = True
        threading.Thread(
            target=_quietly(Milter.milter.stop), name="milter-stop", daemon=True
        ).start()
        deadline = time.monotonic() + _STOP_SECONDS
        while self._thread.is_alive() and time.monotonic() < deadline:
            _knock(self.socket_spec)
            self._thread.join(0.05)

    def _serve(self) -> None:
        controller.leave_signals_to_main_thread()  # libmilter's signal thread inherits it
        try:
            Milter.milter.main()
            why = "libmilter's loop ended"
        except Milter.milter.error as error:
            why = f"libmilter: {error}"
        if not self._stopping:
            self.failure = f"the milter stopped on its own ({why}): stopping typogate"
            log.error(self.failure)
            os.kill(os.getpid(), signal.SIGTERM)  # the controller stops the rest


def _await_signal_thread(timeout: float = 5.0) -> None:
    """Return once libmilter's signal thread waits in ``sigwait`` (Linux shows it in
    /proc). Until then a signal sent to the process waits in its queue, where that thread,
    as it starts waiting, could take it and stop the milter; from then on the main thread
    gets every signal. Without /proc, returns at once."""
    tasks = Path("/proc/self/task")
    deadline = time.monotonic() + timeout
    while tasks.is_dir() and time.monotonic() < deadline:
        for task in tasks.iterdir():
            with suppress(OSError):
                if (task / "wchan").read_text().startswith("do_sigtimedwait"):
                    return
        time.sleep(0.005)


def _register(socket_spec: str, timeout: int) -> None:
    """What pymilter's ``runmilter`` does before it serves: the callbacks into the
    factory's object, the socket, the registration; then opens the socket."""
    milter = Milter.milter
    milter.set_connect_callback(Milter.connect_callback)
    milter.set_helo_callback(lambda ctx, host: ctx.getpriv().hello(host))
    milter.set_envfrom_callback(lambda ctx, *b: ctx.getpriv().envfrom_bytes(*b))
    milter.set_envrcpt_callback(lambda ctx, *b: ctx.getpriv().envrcpt_bytes(*b))
    milter.set_header_callback(lambda ctx, f, v: ctx.getpriv().header_bytes(f, v))
    milter.set_eoh_callback(lambda ctx: ctx.getpriv().eoh())
    milter.set_body_callback(lambda ctx, chunk: ctx.getpriv().body(chunk))
    milter.set_eom_callback(lambda ctx: ctx.getpriv().eom())
    milter.set_abort_callback(lambda ctx: ctx.getpriv().abort())
    milter.set_close_callback(Milter.close_callback)
    milter.setconn(socket_spec)
    milter.settimeout(timeout)
    milter.register(
        "typogate",
        data=lambda ctx: ctx.getpriv().data(),
        unknown=lambda ctx, cmd: ctx.getpriv().unknown(cmd),
        # As runmilter: no negotiation with a libmilter older than 1.0.1.
        negotiate=Milter.negotiate_callback if milter.getversion() >= (1, 0, 1) else None,
    )
    milter.opensocket(True)  # True: remove a stale unix socket first


def _quietly(stop: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        controller.leave_signals_to_main_thread()
        with suppress(Milter.milter.error):  # already stopped
            stop()

    return run


def _knock(socket_spec: str) -> None:
    """Connect to the milter's socket and leave: wakes libmilter's listener."""
    address = milter_address(socket_spec)
    with suppress(OSError):
        if isinstance(address, str):
            with socket.socket(socket.AF_UNIX) as knock:
                knock.settimeout(1)
                knock.connect(address)
            return
        socket.create_connection(address, timeout=1).close()
