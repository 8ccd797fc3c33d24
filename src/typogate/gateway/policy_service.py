"""Postfix policy delegation service (``check_policy_service``), per recipient at RCPT time.

The protocol (Postfix SMTPD_POLICY_README): the client sends ``name=value`` lines and an
empty line; the server answers ``action=...`` and an empty line; a connection carries many
requests. Everything that is not a well-formed RCPT request gets ``DUNNO`` and a log line,
never a crash: a policy service that fails makes Postfix answer 451 to the client. A
recipient whose destination cannot be read is never waved through: it gets
``gateway.unreadable_address`` (450 by default) and a log line.

Bounds, so that no client, slow or greedy, keeps Postfix's own requests waiting past its
``smtpd_policy_service_timeout`` (100 s by default; Postfix then applies its
``default_action``):

* a request with a line longer than ``max_line``, longer than four such lines in all, or of
  more than ``max_attributes`` lines, is discarded and answered DUNNO;
* a connection waiting for its next request is closed after ``idle_seconds`` (Postfix
  itself closes an idle one after ``smtpd_policy_service_max_idle``, 300 s, and reconnects);
  once a request has begun, the rest of it must come within ``read_seconds``; an answer the
  client does not take within ``write_seconds`` (a client that never reads) closes it;
* each connection's kernel buffers are 64 KiB each way, so one that never reads makes
  the service hold and answer little before it stops reading;
* at most ``max_connections`` are served at once: when the table is full, the connection
  idle the longest makes room for the new one (a real request is always served; an idle
  Postfix connection simply reconnects), and a client sending many requests without
  waiting lets the others in between each one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
from dataclasses import dataclass

from typogate.config import Limits
from typogate.domains import InvalidAddress
from typogate.gateway import answers
from typogate.gateway.activation import server_arguments
from typogate.gateway.admission import ALONE, Neighbours, fit_open_files
from typogate.gateway.envelope import Envelope
from typogate.gateway.gatekeeper import Decision, Gatekeeper
from typogate.vocabulary import Action, HoldSource

log = logging.getLogger(__name__)

DUNNO = "DUNNO"
_TERMINATOR = b"\n\n"
_CHUNK = 65536
# Each connection's kernel buffers, each way. A request is at most 16 KiB and Postfix waits
# for each answer before its next request, so this never slows it; left to the kernel's
# autotuning, a client that never reads has it hold megabytes of answers per connection.
_SOCKET_BUFFER = 65536


@dataclass(frozen=True, slots=True)
class PolicyLimits:
    """Bounds on what one client may send and how long it may take (``[limits]``)."""

    max_line: int = 4096
    max_attributes: int = 128
    idle_seconds: float = 300.0
    read_seconds: float = 10.0
    write_seconds: float = 10.0
    max_connections: int = 512

    @classmethod
    def of(cls, limits: Limits, max_connections: int | None = None) -> PolicyLimits:
        """The bounds the configuration's ``[limits]`` set (``max_connections``: the
        command line's, when given)."""
        return cls(
            idle_seconds=limits.policy_idle_seconds,
            read_seconds=limits.policy_read_seconds,
            write_seconds=limits.policy_write_seconds,
            max_connections=max_connections or limits.policy_connections,
        )


@dataclass(eq=False, slots=True)
class _Connection:
    """One client in the connection table: when it last made progress, and whether a
    request of it is being judged (such a connection is never evicted)."""

    writer: asyncio.StreamWriter
    since: float
    judging: bool = False


class PolicyService:
    """Answers Postfix policy requests with the gatekeeper's decisions.

    In audit mode everything is decided and recorded, and the answer is always ``DUNNO``.
    """

    def __init__(
        self,
        gatekeeper: Gatekeeper,
        *,
        limits: PolicyLimits | None = None,
        beside: Neighbours = ALONE,
    ) -> None:
        self.gatekeeper = gatekeeper
        self.limits = limits or PolicyLimits()
        self._beside = beside  # the process's other listeners, sharing its open files
        self._table: set[_Connection] = set()
        self.evicted = 0  # connections closed to make room, since the start

    @property
    def connections(self) -> int:
        """Connections being served now."""
        return len(self._table)

    async def start(
        self, host: str, port: int, sock: socket.socket | None = None
    ) -> asyncio.Server:
        """Listen on ``host:port`` (or on ``sock``, passed by systemd, bound there); returns
        the running server. Raises OSError (port in use).

        The connection table is fitted to the open-file limit first: past it, ``accept()``
        fails, and Postfix's next connection would wait unanswered however idle the ones
        in the table are (making room is how a flood of them is outlasted)."""
        fits = fit_open_files(
            "policy", self.limits.max_connections, files_per_session=1, beside=self._beside
        )
        self.limits = dataclasses.replace(self.limits, max_connections=fits)
        where = server_arguments(host, port, sock)
        server = await asyncio.start_server(self._serve_connection, **where)
        for listening in server.sockets:  # connections accepted from it inherit the sizes
            listening.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER)
            listening.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SOCKET_BUFFER)
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
            held = await asyncio.get_running_loop().run_in_executor(
                None, self.gatekeeper.hold, [verdict], envelope, HoldSource.POSTFIX_HOLD
            )
        except Exception as error:  # the record is what makes a hold releasable
            log.error("policy: cannot record hold of %s: %s", verdict.recipient, error)
            held = None
        if held is None:  # or not recorded within hold_record_seconds
            return "451 4.3.0 typogate cannot record the hold now; please try again later"
        return f"HOLD {answers.hold_reason(verdict)}"

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        loop = asyncio.get_running_loop()
        connection = self._admit(writer, loop.time())
        if connection is None:
            writer.close()
            return
        buffer = bytearray()
        try:
            while True:
                request = await self._read_request(reader, buffer)
                if request is None:
                    break
                connection.judging = True
                action = await self.answer(request) if request else DUNNO
                connection.judging = False
                writer.write(f"action={answers.protocol_text(action, 480)}\n\n".encode())
                if writer.transport.get_write_buffer_size():  # not yet taken by the client
                    async with asyncio.timeout(self.limits.write_seconds):
                        await writer.drain()
                connection.since = loop.time()
                if _TERMINATOR in buffer:  # requests sent without waiting: let others in
                    await asyncio.sleep(0)
        except TimeoutError:  # its answers are not taken: drop them, do not wait to flush
            log.info("policy: connection closed: too slow to take its answers")
            writer.transport.abort()
        except ConnectionError as error:
            log.debug("policy: connection ended: %s", error)
        finally:
            self._table.discard(connection)
            writer.close()

    def _admit(self, writer: asyncio.StreamWriter, now: float) -> _Connection | None:
        """A place in the table for a new connection; when it is full, the connection idle
        the longest is closed to make room (None only when every one is being judged)."""
        if len(self._table) >= self.limits.max_connections:
            idle = [c for c in self._table if not c.judging]
            if not idle:
                log.warning("policy: %d connections busy, refusing another", len(self._table))
                return None
            oldest = min(idle, key=lambda c: c.since)
            self._table.discard(oldest)
            oldest.writer.transport.abort()
            self.evicted += 1
            if self.evicted == 1 or self.evicted % 1000 == 0:  # said now and then, not each time
                log.warning(
                    "policy: %d connections open: closed the one idle the longest "
                    "(%d closed so far)",
                    len(self._table) + 1,
                    self.evicted,
                )
        connection = _Connection(writer, now)
        self._table.add(connection)
        return connection

    async def _read_request(
        self, reader: asyncio.StreamReader, buffer: bytearray
    ) -> dict[str, str] | None:
        """The next request's attributes (``buffer`` keeps what came after it); ``{}`` for a
        malformed one; ``None`` at end of input or when the client is too slow.

        Waiting for a request to begin is bounded by ``idle_seconds``, reading the rest of
        it by ``read_seconds``; a request longer than the limit is discarded up to its end.
        """
        end = buffer.find(_TERMINATOR)
        overlong = False
        loop = asyncio.get_running_loop()
        # The rest of a request that has begun must come by this time, however it trickles.
        deadline = loop.time() + self.limits.read_seconds if buffer else None
        try:
            while end < 0:
                if len(buffer) > self._max_request:  # keep the last byte: it may be a "\n"
                    del buffer[:-1]
                    overlong = True
                waiting = loop.time() + self.limits.idle_seconds if deadline is None else deadline
                async with asyncio.timeout_at(waiting):
                    chunk = await reader.read(_CHUNK)
                if not chunk:
                    return None  # end of input (a request with no blank line is dropped)
                if deadline is None:
                    deadline = loop.time() + self.limits.read_seconds
                searched_from = max(len(buffer) - 1, 0)
                buffer += chunk
                end = buffer.find(_TERMINATOR, searched_from)
        except TimeoutError:
            log.debug("policy: connection closed: idle or too slow to send a request")
            return None
        raw = bytes(buffer[:end])
        del buffer[: end + len(_TERMINATOR)]
        if overlong or end > self._max_request:
            log.warning("policy: request longer than %d bytes discarded", self._max_request)
            return {}
        lines = raw.split(b"\n")
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
