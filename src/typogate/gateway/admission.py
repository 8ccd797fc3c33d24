"""Which clients get a session: at most so many sessions at once, and at most so many
from one client address (the SMTP proxy and the sink, both on aiosmtpd; the web interface
counts its connections the same way, in :mod:`typogate.web.server`, and the policy
service fits its connection table to the open-file limit with :func:`fit_open_files`).

Postfix bounds its smtpd the same way (``default_process_limit``, and anvil's
``smtpd_client_connection_count_limit`` per client). A client past a bound is told ``421``
before the greeting and closed; its MTA tries again later. The bounds also have to fit the
process's open-file limit: past it, ``accept()`` fails and *every* client, the legitimate
ones too, waits without a greeting while the log fills with tracebacks.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import resource
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from aiosmtpd.smtp import SMTP, Session

log = logging.getLogger(__name__)

LISTEN_BACKLOG = 100  # asyncio's default; uvicorn's (2048) is set to it as well
# A session holds up to two descriptors (the client's and, relayed or forwarded, the next
# hop's). The rest of the process (store, logs, listeners, threads) needs a few dozen, and
# connections being refused or evicted need room too, on each listener: asyncio accepts up
# to its listen backlog (100) at a time, and one it closes is closed a turn of the loop
# later, while the next are accepted.
_FILES_PER_SESSION = 2
_FILES_OF_THE_REST = 64
_FILES_PER_LISTENER = 2 * LISTEN_BACKLOG
# An IPv6 client is its /64: one host's usual allocation, which it can walk through.
_IPV6_CLIENT_PREFIX = 64

_TOO_MANY = "421 4.3.2 {what}: too many connections, try again later"
_TOO_MANY_FROM = "421 4.7.0 {what}: too many connections from {client}, try again later"


@dataclass(frozen=True, slots=True)
class Neighbours:
    """The other listeners of a process (``serve`` runs the policy service, the web
    interface and the milter in one), whose sessions share its open-file limit."""

    listeners: int = 0  # that accept a burst of connections to refuse
    files: int = 0  # that their sessions may hold at once, fitted to the limit in shares
    unbounded: int = 0  # held by a listener that takes every connection: kept whole

    def __add__(self, other: Neighbours) -> Neighbours:
        return Neighbours(
            self.listeners + other.listeners,
            self.files + other.files,
            self.unbounded + other.unbounded,
        )


ALONE = Neighbours()  # a listener with the process to itself
# libmilter takes every connection it is offered, a descriptor and a thread each: it has
# no bound to fit, and refuses no burst. Postfix opens one from each smtpd process and, for
# non_smtpd_milters, each cleanup process: up to its default_process_limit (100) of each.
MILTER = Neighbours(unbounded=2 * 100)


class SessionHandler(Protocol):
    """An aiosmtpd handler whose sessions hold something to close when they end."""

    async def end_session(self, session: Session) -> None:
        """Close what ``session`` holds (its next-hop session); nothing when it holds none."""


class Admission:
    """Counts the sessions open now, in all and per client address, against the bounds."""

    def __init__(self, what: str, total: int, per_client: int | None = None) -> None:
        self.what = what
        self.total = total
        self.per_client = per_client
        self.open = 0
        self._per_client: Counter[str] = Counter()
        # What ended sessions still close: kept here, as the loop keeps only weak references.
        self._closing: set[asyncio.Task[None]] = set()

    @classmethod
    def within_open_files(
        cls,
        what: str,
        total: int,
        per_client: int | None = None,
        *,
        files_per_session: int = _FILES_PER_SESSION,
        beside: Neighbours = ALONE,
    ) -> Admission:
        """An admission whose sessions fit the process's open-file limit, beside those of
        its other listeners (:func:`fit_open_files`)."""
        fits = fit_open_files(what, total, files_per_session, beside=beside)
        return cls(what, fits, per_client)

    def admit(self, client: str) -> str | None:
        """Take a place for a new session from ``client`` (its IP address); the ``421``
        reply when there is none."""
        if self.open >= self.total:
            log.warning("%s: %d connections open, refusing another", self.what, self.open)
            return _TOO_MANY.format(what=self.what)
        key = _client_key(client)
        if self.per_client is not None and self._per_client[key] >= self.per_client:
            log.warning("%s: too many connections from %s, refusing another", self.what, key)
            return _TOO_MANY_FROM.format(what=self.what, client=key)
        self.open += 1
        self._per_client[key] += 1
        return None

    def leave(self, client: str, closing: Coroutine[Any, Any, None] | None = None) -> None:
        """A session from ``client`` is over: its place is free, and ``closing`` closes
        what it held, in the background."""
        key = _client_key(client)
        self.open -= 1
        self._per_client[key] -= 1
        if self._per_client[key] <= 0:
            del self._per_client[key]
        if closing is None:
            return
        task = asyncio.get_running_loop().create_task(closing)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


def fit_open_files(
    what: str,
    total: int,
    files_per_session: int = _FILES_PER_SESSION,
    *,
    beside: Neighbours = ALONE,
) -> int:
    """How many of ``total`` sessions the process's open-file limit has room for, beside
    those of its other listeners.

    The soft limit is raised toward the hard one as far as all of them need; when even the
    hard limit is too low, each listener gets its share of the room in proportion to what
    it asks, and a warning names the limit to raise (``LimitNOFILE=`` in a systemd unit).
    """
    mine = total * files_per_session
    rest = _FILES_OF_THE_REST + (1 + beside.listeners) * _FILES_PER_LISTENER + beside.unbounded
    needed = mine + beside.files + rest
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
        soft = raised
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return total
    room = max(0, soft - rest) * mine // (mine + beside.files)
    fits = max(room // files_per_session, 1)
    log.warning(
        "%s: the open-file limit (%d) leaves room for %d sessions at once, not %d; "
        "raise it (LimitNOFILE= in a systemd unit) to %d",
        what,
        soft,
        fits,
        total,
        needed,
    )
    return fits


def client_address(peer: object) -> str:
    """The IP address in a socket's peer name (``session.peer``, ``peername``); "" when
    it has none (a Unix socket)."""
    return str(peer[0]) if isinstance(peer, tuple) else ""


def _client_key(client: str) -> str:
    try:
        ip = ipaddress.ip_address(client)
    except ValueError:
        return client
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # an IPv4 client on a dual-stack socket
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/{_IPV6_CLIENT_PREFIX}", strict=False))
    return str(ip)


class AdmittedSMTP(SMTP):
    """aiosmtpd's SMTP server for one connection, let in by an :class:`Admission` first.

    A connection past a bound gets the ``421`` instead of the greeting and is closed; it
    never becomes a session. The greeting is ``220 HOSTNAME ESMTP``. However a session
    ends (QUIT, dropped, timed out), its handler's :meth:`~SessionHandler.end_session`
    closes what it held.
    """

    def __init__(self, handler: SessionHandler, admission: Admission, **options: Any) -> None:
        # The greeting names no software and no version (aiosmtpd's is "Python SMTP 1.x"):
        # nothing for a scanner to look up.
        super().__init__(handler, ident="ESMTP", **options)
        self.session_handler = handler
        self.admission = admission
        self.client: str | None = None  # set once admitted

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        client = client_address(transport.get_extra_info("peername"))
        refusal = self.admission.admit(client)
        if refusal is not None:
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(refusal.encode() + b"\r\n")
            transport.close()
            return
        self.client = client
        super().connection_made(transport)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        # aiosmtpd expects only HeaderParseError from the email package's parser, which
        # raises IndexError, AttributeError, TypeError, UnboundLocalError on some paths
        # (<@a,(a"@example.org>): the client read "500 Error: (IndexError) ...", the log
        # a traceback of some 3 KB, at every such command. Whatever it raises on a path
        # a stranger wrote, the path is malformed.
        try:
            return super()._getaddr(arg)
        except Exception:
            return None, None  # 553 5.1.3 malformed address, as for any other

    def connection_lost(self, error: Exception | None) -> None:
        if self.client is None:
            return
        session = self.session
        super().connection_lost(error)
        assert session is not None  # made with the connection
        self.admission.leave(self.client, self.session_handler.end_session(session))
