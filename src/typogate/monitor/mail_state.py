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

Most look-alikes do not exist, so most names cost one question. A sweep sends the
questions over one UDP socket per nameserver, many in flight, matching answers by id and
question: first an MX question per name, whose NXDOMAIN is read from the answer's header
alone; then, for the few names that exist, the A, AAAA and TXT questions, read with
dnspython's message parser. Any answer that is not plain (no answer after every try,
truncated, an error code, an alias to follow) sends its domain to dnspython's asyncio
resolver, which asks everything again with its own timeouts, retries, TCP fallback and
alias chasing; what it cannot get answered is ``unresolved``. The sweep exists for speed:
a resolver query costs about ten times its CPU (bench/monitor.py).
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.nameserver
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver

from typogate.vocabulary import MailState


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


# The records of one type at a name: a list (empty: none of that type), None: no such name.
_Records = list[Any]
_Asker = Callable[[str, dns.rdatatype.RdataType], Awaitable[_Records | None]]


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

    unsure: list[str] = []
    async with _Sweep(lookup) as sweep:
        existing = await _existing(sweep, names, settle, unsure)

        async def finish(domain: str, mx: _Records) -> None:
            try:
                settle(domain, await _facts(sweep.records, domain, mx))
            except _Unsure:
                unsure.append(domain)

        await asyncio.gather(*(finish(domain, mx) for domain, mx in existing.items()))
    resolver = _resolver(lookup)
    limit = asyncio.Semaphore(lookup.concurrency)

    async def resolve(domain: str) -> None:
        async with limit:
            try:
                facts = await _facts(partial(_resolver_records, resolver), domain)
            except _Unanswered:
                facts = MailFacts(MailState.UNRESOLVED)
            settle(domain, facts)

    await asyncio.gather(*(resolve(domain) for domain in unsure))
    return found


async def _existing(
    sweep: _Sweep,
    names: list[str],
    settle: Callable[[str, MailFacts], None],
    unsure: list[str],
) -> dict[str, _Records]:
    """Ask every name's MX through the sweep: NXDOMAIN is settled at once, from the header;
    the MX records of the names that exist are returned; the rest go to ``unsure``."""
    existing: dict[str, _Records] = {}
    if not names:
        return existing
    left = len(names)
    finished = asyncio.get_running_loop().create_future()

    def answered(name: str, data: bytes | None) -> None:
        nonlocal left
        try:
            records = _read(data, name, dns.rdatatype.MX)
        except _Unsure:
            unsure.append(name)
        else:
            if records is None:
                settle(name, NXDOMAIN)
            else:
                existing[name] = records
        left -= 1
        if not left:
            finished.set_result(None)

    for name in names:
        sweep.ask(name, dns.rdatatype.MX, partial(answered, name))
    await finished
    return existing


async def _facts(records: _Asker, domain: str, mx: _Records | None = None) -> MailFacts:
    """A domain's mail state from ``records`` (name, type -> its records, [] for none,
    None for no such name), in the order an MTA asks; ``mx`` when already known."""
    if mx is None:
        mx = await records(domain, dns.rdatatype.MX)
        if mx is None:
            return NXDOMAIN
    if mx:
        exchanges = sorted((rr.preference, rr.exchange.to_text()) for rr in mx)
        hosts = tuple(host.rstrip(".") for _, host in exchanges if host != ".")
        state = MailState.MX if hosts else MailState.NULL_MX
    else:
        hosts = ()
        addresses = await records(domain, dns.rdatatype.A)
        if not addresses:
            addresses = await records(domain, dns.rdatatype.AAAA)
        state = MailState.A_ONLY if addresses else MailState.NO_MAIL
    spf = _has_record(await records(domain, dns.rdatatype.TXT), "v=spf1")
    dmarc = _has_record(await records(f"_dmarc.{domain}", dns.rdatatype.TXT), "v=dmarc1")
    return MailFacts(state, hosts, spf, dmarc)


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


class _Unsure(Exception):
    """The sweep got no plain answer (none, truncated, an error code, an alias): the
    resolver asks again properly."""


async def _resolver_records(
    resolver: dns.asyncresolver.Resolver, name: str, rdtype: dns.rdatatype.RdataType
) -> _Records | None:
    """The records of one type at ``name`` through the resolver (aliases followed, TCP
    when truncated); raises _Unanswered when no server answered."""
    try:
        answer = await resolver.resolve(name, rdtype, search=False)
    except dns.resolver.NXDOMAIN:
        return None
    except dns.resolver.NoAnswer:
        return []
    except (dns.resolver.NoNameservers, dns.exception.Timeout) as error:
        raise _Unanswered(name) from error
    return list(answer)


def _read(data: bytes | None, name: str, rdtype: dns.rdatatype.RdataType) -> _Records | None:
    """The records of a plain answer the sweep got; None for NXDOMAIN, read from the
    header alone (most names); raises _Unsure for anything the resolver should handle."""
    if data is None:
        raise _Unsure(name)
    flags = int.from_bytes(data[2:4], "big")
    rcode = dns.rcode.from_flags(flags, 0)
    if flags & dns.flags.TC or rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        raise _Unsure(name)
    if rcode == dns.rcode.NXDOMAIN:
        return None
    try:
        message = dns.message.from_wire(data)
        rrset = message.find_rrset(
            message.answer, dns.name.from_text(name), dns.rdataclass.IN, rdtype
        )
    except KeyError:
        if message.answer:  # an alias (CNAME, DNAME): the resolver follows it
            raise _Unsure(name) from None
        return []
    except dns.exception.DNSException:
        raise _Unsure(name) from None
    return list(rrset)


def _has_record(records: _Records | None, tag: str) -> bool:
    for record in records or ():
        text = b"".join(record.strings).decode("ascii", "replace").strip().lower()
        # "v=spf1" alone or followed by a space: "v=spf10" is not SPF (RFC 7208, 4.5).
        if text == tag or text.startswith(tag + " ") or text.startswith(tag + ";"):
            return True
    return False


@dataclass(slots=True)
class _Question:
    name: str
    rdtype: int
    reply: Callable[[bytes | None], None]  # told the answer, or None after the last try
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
_IN = dns.rdataclass.IN.to_bytes(2, "big")


def _question(name: str, rdtype: int) -> bytes:
    labels = name.rstrip(".").encode("ascii").split(b".")
    wire = b"".join(len(label).to_bytes(1, "big") + label for label in labels)
    return wire + b"\0" + rdtype.to_bytes(2, "big") + _IN


class _Sweep(asyncio.DatagramProtocol):
    """Questions over one UDP socket per nameserver, answers matched by id and question,
    each answer handed to its question's ``reply`` as it comes (None after the last try).

    Driven by callbacks, not a task per question: an answer sends the next question at
    once. The questions in flight grow by one per answer up to ``concurrency`` and halve on
    a timeout (as TCP's window does), so that neither a burst into a small socket buffer
    nor a rate-limiting resolver turns into lost answers and waits."""

    def __init__(self, lookup: Lookup) -> None:
        self.lookup = lookup
        self.pending: dict[int, _Question] = {}
        self.waiting: deque[_Question] = deque()
        self.transports: list[asyncio.DatagramTransport] = []
        self.turn = 0
        self.window = min(_FIRST_WINDOW, lookup.concurrency)
        self.expiry: asyncio.Task[None] | None = None

    async def __aenter__(self) -> _Sweep:
        loop = asyncio.get_running_loop()
        for server in self.lookup.nameservers:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: self, remote_addr=(server.host, server.port)
            )
            # Room for a window's answers even when this process is slow to read them.
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER)
            self.transports.append(transport)
        self.expiry = asyncio.ensure_future(self._expire())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.expiry is not None:
            self.expiry.cancel()
        for transport in self.transports:
            transport.close()

    def ask(self, name: str, rdtype: int, reply: Callable[[bytes | None], None]) -> None:
        """Send ``name``'s ``rdtype`` question when the window has room."""
        self.waiting.append(_Question(name, rdtype, reply, self.turn))
        self.turn = (self.turn + 1) % len(self.transports)
        self._fill()

    async def records(self, name: str, rdtype: dns.rdatatype.RdataType) -> _Records | None:
        """The records of a plain answer (see _read); raises _Unsure otherwise."""
        answer: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self.ask(name, rdtype, answer.set_result)
        return _read(await answer, name, rdtype)

    def _fill(self) -> None:
        while self.waiting and len(self.pending) < self.window:
            self._send(self.waiting.popleft())

    def _send(self, question: _Question) -> None:
        ident = random.getrandbits(16)
        while ident in self.pending:
            ident = random.getrandbits(16)
        if not question.question:
            question.question = _question(question.name, question.rdtype)
        question.sent = time.monotonic()
        question.tries += 1
        self.pending[ident] = question
        wire = ident.to_bytes(2, "big") + _HEADER + question.question
        self.transports[question.server].sendto(wire)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        ident = int.from_bytes(data[:2], "big")
        question = self.pending.get(ident)
        # An answer echoes the question; anything else is stale or forged: ignored.
        if question is None or data[12 : 12 + len(question.question)] != question.question:
            return
        if not int.from_bytes(data[2:4], "big") & dns.flags.QR:
            return
        del self.pending[ident]
        self.window = min(self.window + 1, self.lookup.concurrency)
        question.reply(data)
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
                    question.reply(None)
                else:
                    question.server = (question.server + 1) % len(self.transports)
                    self._send(question)
            self._fill()
