"""Postfix policy delegation service (``check_policy_service``), per recipient at RCPT time.

The protocol (Postfix SMTPD_POLICY_README): the client sends ``name=value`` lines and an
empty line; the server answers ``action=...`` and an empty line; a connection carries many
requests. Everything that is not a well-formed RCPT request gets ``DUNNO`` and a log line,
never a crash: a policy service that fails makes Postfix answer 451 to the client. A
recipient whose destination cannot be read is never waved through: it gets
``gateway.unreadable_address`` (450 by default) and a log line.

Bounds: a request with a line longer than ``max_line``, longer than four such lines in
all, or of more than ``max_attributes`` lines, is discarded and answered DUNNO; a
connection idle for ``idle_timeout`` seconds is closed (a request with no blank line never
hangs a task forever); at most ``max_connections`` are served at once (more are closed at
once, and Postfix applies its ``default_action``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from typogate.domains import InvalidAddress
from typogate.gateway import answers
from typogate.gateway.gatekeeper import Decision, Envelope, Gatekeeper
from typogate.vocabulary import Action, HoldSource

log = logging.getLogger(__name__)

DUNNO = "DUNNO"


@dataclass(frozen=True, slots=True)
class PolicyLimits:
    """Bounds on what one client may send."""

    max_line: int = 4096
    max_attributes: int = 128
    idle_timeout: float = 300.0
    max_connections: int = 512


class PolicyService:
    """Answers Postfix policy requests with the gatekeeper's decisions.

    In audit mode everything is decided and recorded, and the answer is always ``DUNNO``.
    """

    def __init__(self, gatekeeper: Gatekeeper, *, limits: PolicyLimits | None = None) -> None:
        self.gatekeeper = gatekeeper
        self.limits = limits or PolicyLimits()
        self.connections = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> asyncio.Server:
        """Listen on ``host:port``; returns the running server. Raises OSError (port in use)."""
        server = await asyncio.start_server(
            self._serve_connection, host, port, limit=self._max_request
        )
        log.info(
            "policy service on %s:%d (%s mode, %d domains)",
            host,
            port,
            self.gatekeeper.mode,
            self.gatekeeper.guard.domain_count,
        )
        return server

    async def answer(self, request: dict[str, str]) -> str:
        """The action for one request (``DUNNO``, ``HOLD ...``, ``550 5.1.2 ...``)."""
        if request.get("request") != "smtpd_access_policy":
            log.warning("policy: not an smtpd_access_policy request: %r", request.get("request"))
            return DUNNO
        if request.get("protocol_state", "").upper() != "RCPT":
            return DUNNO
        recipient = request.get("recipient", "")
        envelope = Envelope(
            sender=request.get("sender") or None,
            sasl_username=request.get("sasl_username") or None,
            queue_id=request.get("queue_id") or None,
            client_address=request.get("client_address") or None,
        )
        try:
            decision = self.gatekeeper.decide(recipient, envelope)
        except InvalidAddress as error:
            refusal = self.gatekeeper.unreadable(recipient, error)  # never a pass
            return DUNNO if refusal is None else str(refusal)
        if decision.action is Action.REJECT:
            return str(answers.refusal(decision.verdict))
        if decision.action is Action.HOLD:
            return await self._hold(decision, envelope)
        if decision.action is Action.WARN:
            name, value = answers.warning_header(decision.verdict)
            return f"PREPEND {name}: {value}"
        return DUNNO

    async def _hold(self, decision: Decision, envelope: Envelope) -> str:
        verdict = decision.verdict
        try:
            # The hold is committed before Postfix is answered: off the event loop.
            await asyncio.get_running_loop().run_in_executor(
                None, self.gatekeeper.hold, [verdict], envelope, HoldSource.POSTFIX_HOLD
            )
        except Exception as error:  # the record is what makes a hold releasable
            log.error("policy: cannot record hold of %s: %s", verdict.recipient, error)
            return "451 4.3.0 typogate cannot record the hold now; please try again later"
        return f"HOLD {answers.hold_reason(verdict)}"

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if self.connections >= self.limits.max_connections:
            log.warning("policy: %d connections open, refusing another", self.connections)
            writer.close()
            return
        self.connections += 1
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            while True:
                request = await self._read_request(reader)
                if request is None:
                    break
                action = await self.answer(request) if request else DUNNO
                writer.write(f"action={answers.one_line(action, 480)}\n\n".encode())
                await writer.drain()
        except (ConnectionError, TimeoutError) as error:
            log.info("policy: connection ended: %s", error)
        finally:
            self.connections -= 1
            if task is not None:
                self._tasks.discard(task)
            writer.close()

    async def _read_request(self, reader: asyncio.StreamReader) -> dict[str, str] | None:
        """One request's attributes; ``{}`` for a malformed one; ``None`` at end of input.

        The whole request is read at once, up to its blank line (one await per request,
        not per line); an over-long request is discarded up to its end.
        """
        try:
            raw = await asyncio.wait_for(
                reader.readuntil(b"\n\n"), timeout=self.limits.idle_timeout
            )
        except asyncio.IncompleteReadError:
            return None  # end of input (a request with no blank line is dropped)
        except asyncio.LimitOverrunError:
            await self._discard_request(reader)
            log.warning("policy: request longer than %d bytes discarded", self._max_request)
            return {}
        lines = raw.split(b"\n")[:-2]
        if len(lines) > self.limits.max_attributes:
            log.warning("policy: request of %d lines discarded", len(lines))
            return {}
        attributes: dict[str, str] = {}
        for line in lines:
            line = line.rstrip(b"\r")
            name, sep, value = line.partition(b"=")
            if not sep or not name or len(line) > self.limits.max_line:
                log.warning("policy: malformed or over-long line %r", line[:80])
                return {}
            attributes[name.strip().decode("utf-8", "replace")] = value.decode("utf-8", "replace")
        return attributes

    @property
    def _max_request(self) -> int:
        return self.limits.max_line * 4

    async def _discard_request(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                await asyncio.wait_for(reader.readuntil(b"\n\n"), timeout=self.limits.idle_timeout)
                return
            except asyncio.LimitOverrunError as overrun:
                # Keep the last byte: it may be the first newline of the terminator.
                await reader.readexactly(max(overrun.consumed - 1, 1))
