"""Would a look-alike accept mail? Its mail state in DNS, asked with dnspython.

The states, in the order a sending MTA reads DNS (RFC 5321, section 5.1):

* ``nxdomain``: the name does not exist; mail to it bounces.
* ``null_mx``: a single MX of ``.`` (RFC 7505): the domain says it takes no mail.
* ``mx``: mail exchangers, the ``mx`` hosts; mail is delivered there.
* ``a_only``: no MX but an address (A or AAAA): mail is delivered to that address by the
  implicit-MX rule. Look-alikes used for fraud often look like this or like ``mx``
  without any web site, which web-oriented feeds miss.
* ``no_mail``: registered, but no MX and no address: mail cannot be delivered.
* ``unresolved``: the servers did not answer (timeouts, SERVFAIL) after every retry:
  nothing is known, and nothing is claimed.

SPF (a ``v=spf1`` TXT record at the domain) and DMARC (``v=DMARC1`` at ``_dmarc.``) are
reported as signs of a domain set up for mail.

Most look-alikes do not exist, so they are asked in two steps. A sweep sends one MX query
per name over a single UDP socket per nameserver, many in flight, matching answers by id
and question, and settles only the names the server calls NXDOMAIN. Every other name
(found, truncated, failed or timed out) goes to dnspython's asyncio resolver, which asks
MX, A, AAAA and the TXT records with its own timeouts, retries and TCP fallback. The sweep
exists for speed: per name it costs a fifth of a resolver query (bench/monitor.py).
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.nameserver
import dns.rcode
import dns.rdatatype
import dns.resolver


class MailState(StrEnum):
    """What DNS says about mail to a domain."""

    NXDOMAIN = "nxdomain"
    NO_MAIL = "no_mail"
    NULL_MX = "null_mx"
    MX = "mx"
    A_ONLY = "a_only"
    UNRESOLVED = "unresolved"

    @property
    def accepts_mail(self) -> bool:
        """True when an MTA would deliver mail for the domain somewhere."""
        return self in (MailState.MX, MailState.A_ONLY)


@dataclass(frozen=True, slots=True)
class MailFacts:
    """A domain's mail state, its mail exchangers (by preference) and its SPF and DMARC."""

    state: MailState
    mx: tuple[str, ...] = ()
    spf: bool = False
    dmarc: bool = False


NXDOMAIN = MailFacts(MailState.NXDOMAIN)


class NameserverError(ValueError):
    """A ``--nameserver`` that is not ``HOST[:PORT]`` with an IP address."""


@dataclass(frozen=True, slots=True)
class Nameserver:
    """A DNS server to ask, by IP address (a resolver, or a zone's own server)."""

    host: str
    port: int = 53

    @classmethod
    def parse(cls, text: str) -> Nameserver:
        """``192.0.2.1``, ``192.0.2.1:5353``, ``[2001:db8::1]:53`` or ``2001:db8::1``."""
        import ipaddress

        value = text.strip()
        host, port = value, "53"
        if value.startswith("["):
            host, _, rest = value[1:].partition("]")
            if rest:
                if not rest.startswith(":"):
                    raise NameserverError(f"{text!r}: expected [ADDRESS]:PORT")
                port = rest[1:]
        elif value.count(":") == 1:
            host, port = value.split(":")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise NameserverError(f"{text!r}: the nameserver is an IP address") from None
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise NameserverError(f"{text!r}: the port is a number from 1 to 65535")
        return cls(host, int(port))

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def system_nameservers() -> tuple[Nameserver, ...]:
    """The nameservers of this machine's resolver configuration (/etc/resolv.conf)."""
    try:
        resolver = dns.resolver.Resolver()
    except dns.resolver.NoResolverConfiguration as error:
        raise NameserverError(f"no nameserver configured on this machine: {error}") from None
    return tuple(Nameserver(str(server), resolver.port) for server in resolver.nameservers)


@dataclass(frozen=True, slots=True)
class Lookup:
    """How DNS is asked: which servers, how many questions at once, how patiently."""

    nameservers: tuple[Nameserver, ...]
    concurrency: int = 256  # questions in flight at once
    timeout: float = 2.0  # seconds for one try
    tries: int = 3  # tries of one question before it counts as unanswered

    def __post_init__(self) -> None:
        if not self.nameservers:
            raise NameserverError("at least one nameserver is needed")
        if self.concurrency < 1 or self.tries < 1 or self.timeout <= 0:
            raise ValueError("concurrency and tries are at least 1, the timeout above 0")


async def mail_states(
    domains: Iterable[str],
    lookup: Lookup,
    done: Callable[[str, MailFacts], None] | None = None,
) -> dict[str, MailFacts]:
    """The mail state of each domain (A-label form), as ``{domain: facts}``.

    ``done`` is called once per domain as soon as its state is known (progress bars).
    """
    names = list(dict.fromkeys(domains))
    found: dict[str, MailFacts] = {}

    def settle(domain: str, facts: MailFacts) -> None:
        found[domain] = facts
        if done is not None:
            done(domain, facts)

    others = await _Sweep(lookup).run(names, lambda domain: settle(domain, NXDOMAIN))
    resolver = _resolver(lookup)
    limit = asyncio.Semaphore(lookup.concurrency)

    async def resolve(domain: str) -> None:
        async with limit:
            settle(domain, await _resolve(resolver, domain))

    await asyncio.gather(*(resolve(domain) for domain in others))
    return found


def _resolver(lookup: Lookup) -> dns.asyncresolver.Resolver:
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [
        dns.nameserver.Do53Nameserver(server.host, server.port) for server in lookup.nameservers
    ]
    resolver.timeout = lookup.timeout
    resolver.lifetime = lookup.timeout * lookup.tries
    resolver.retry_servfail = True  # a SERVFAIL is retried until the lifetime, then reported
    resolver.cache = None  # every run asks afresh: a watch must see changes
    return resolver


class _Unanswered(Exception):
    """No server gave an answer to one question within its tries."""


async def _resolve(resolver: dns.asyncresolver.Resolver, domain: str) -> MailFacts:
    """The full mail state of one domain, asked through the resolver."""
    try:
        mx = await _ask(resolver, domain, dns.rdatatype.MX)
        if mx is None:
            return NXDOMAIN
        if mx:
            exchanges = sorted((rr.preference, rr.exchange.to_text()) for rr in mx)
            hosts = tuple(host for _, host in exchanges if host != ".")
            state = MailState.MX if hosts else MailState.NULL_MX
        else:
            hosts = ()
            addresses = await _ask(resolver, domain, dns.rdatatype.A)
            if not addresses:
                addresses = await _ask(resolver, domain, dns.rdatatype.AAAA)
            state = MailState.A_ONLY if addresses else MailState.NO_MAIL
        spf = _has_record(await _ask(resolver, domain, dns.rdatatype.TXT), "v=spf1")
        dmarc = _has_record(await _ask(resolver, f"_dmarc.{domain}", dns.rdatatype.TXT), "v=dmarc1")
    except _Unanswered:
        return MailFacts(MailState.UNRESOLVED)
    return MailFacts(state, tuple(host.rstrip(".") for host in hosts), spf, dmarc)


async def _ask(
    resolver: dns.asyncresolver.Resolver, name: str, rdtype: dns.rdatatype.RdataType
) -> list | None:  # type: ignore[type-arg]
    """The records of one type at ``name``: a list (empty when there are none), or None
    when the name does not exist. Raises _Unanswered when no server answered."""
    try:
        answer = await resolver.resolve(name, rdtype, search=False)
    except dns.resolver.NXDOMAIN:
        return None
    except dns.resolver.NoAnswer:
        return []
    except (dns.resolver.NoNameservers, dns.exception.Timeout) as error:
        raise _Unanswered(name) from error
    return list(answer)


def _has_record(records: list | None, tag: str) -> bool:  # type: ignore[type-arg]
    for record in records or ():
        text = b"".join(record.strings).decode("ascii", "replace").strip().lower()
        # "v=spf1" alone or followed by a space: "v=spf10" is not SPF (RFC 7208, 4.5).
        if text == tag or text.startswith(tag + " ") or text.startswith(tag + ";"):
            return True
    return False


@dataclass(slots=True)
class _Question:
    domain: str
    server: int  # index of the nameserver it goes to
    tries: int = 0
    sent: float = 0.0
    question: bytes = b""  # the question section as sent: an answer must echo it


_FIRST_WINDOW = 16  # questions in flight at first; the window grows from there
_RECEIVE_BUFFER = 1 << 20  # bytes; the kernel caps it at net.core.rmem_max

# Header of a standard query with recursion desired and one question (RFC 1035, 4.1.1);
# the id is put in front. The question is written directly: the name is a validated
# A-label domain, and building a dnspython Message per name cost more than the rest.
_HEADER = (dns.flags.RD).to_bytes(2, "big") + (1).to_bytes(2, "big") + bytes(6)
_MX_IN = dns.rdatatype.MX.to_bytes(2, "big") + (1).to_bytes(2, "big")


def _question(domain: str) -> bytes:
    labels = domain.rstrip(".").encode("ascii").split(b".")
    return b"".join(len(label).to_bytes(1, "big") + label for label in labels) + b"\0" + _MX_IN


class _Sweep(asyncio.DatagramProtocol):
    """One MX question per name over one UDP socket per nameserver, answers matched by id
    and question. It only tells NXDOMAIN from the rest: a name answered otherwise, or not
    at all within its tries, is left to the resolver.

    Driven by callbacks, not a task per name: an answer sends the next question at once.
    The questions in flight grow by one per answer up to ``concurrency`` and halve on a
    timeout (as TCP's window does), so that neither a burst into a small socket buffer
    nor a rate-limiting resolver turns into lost answers and waits."""

    def __init__(self, lookup: Lookup) -> None:
        self.lookup = lookup
        self.pending: dict[int, _Question] = {}
        self.transports: list[asyncio.DatagramTransport] = []
        self.turn = 0
        self.others: list[str] = []
        self.window = min(_FIRST_WINDOW, lookup.concurrency)

    async def run(self, names: list[str], nxdomain: Callable[[str], None]) -> list[str]:
        """Ask every name; ``nxdomain`` is called for each NXDOMAIN. Returns the others."""
        loop = asyncio.get_running_loop()
        self.names = iter(names)
        self.nxdomain = nxdomain
        self.finished: asyncio.Future[None] = loop.create_future()
        try:
            for server in self.lookup.nameservers:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: self, remote_addr=(server.host, server.port)
                )
                # Room for a window's answers even when this process is slow to read them.
                sock = transport.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER)
                self.transports.append(transport)
            self._fill()
            if self.pending:
                expiry = asyncio.ensure_future(self._expire())
                try:
                    await self.finished
                finally:
                    expiry.cancel()
        finally:
            for transport in self.transports:
                transport.close()
        return self.others

    def _fill(self) -> None:
        """Send questions until the window is full; finish when all are answered."""
        while len(self.pending) < self.window:
            domain = next(self.names, None)
            if domain is None:
                break
            self._send(_Question(domain, self.turn))
            self.turn = (self.turn + 1) % len(self.transports)
        if not self.pending and not self.finished.done():
            self.finished.set_result(None)

    def _send(self, question: _Question) -> None:
        ident = random.getrandbits(16)
        while ident in self.pending:
            ident = random.getrandbits(16)
        if not question.question:
            question.question = _question(question.domain)
        question.sent = time.monotonic()
        question.tries += 1
        self.pending[ident] = question
        self.transports[question.server].sendto(
            ident.to_bytes(2, "big") + _HEADER + question.question
        )

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        ident = int.from_bytes(data[:2], "big")
        question = self.pending.get(ident)
        # An answer echoes the question; anything else is stale or forged: ignored.
        if question is None or data[12 : 12 + len(question.question)] != question.question:
            return
        flags = int.from_bytes(data[2:4], "big")
        if not flags & dns.flags.QR:
            return
        del self.pending[ident]
        if dns.rcode.from_flags(flags, 0) == dns.rcode.NXDOMAIN:
            self.nxdomain(question.domain)
        else:
            self.others.append(question.domain)
        self.window = min(self.window + 1, self.lookup.concurrency)
        self._fill()

    def error_received(self, exc: Exception) -> None:
        pass  # an ICMP error: the question times out and is tried again

    async def _expire(self) -> None:
        """Try again the questions whose answer is late; give up after the last try."""
        timeout = self.lookup.timeout
        while True:
            await asyncio.sleep(min(timeout / 4, 0.25))
            now = time.monotonic()
            late = [(ident, q) for ident, q in self.pending.items() if now - q.sent > timeout]
            if late:
                self.window = max(1, self.window // 2)
            for ident, question in late:
                del self.pending[ident]
                if question.tries >= self.lookup.tries:
                    self.others.append(question.domain)
                else:
                    question.server = (question.server + 1) % len(self.transports)
                    self._send(question)
            self._fill()
