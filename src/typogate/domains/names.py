"""Domain names and recipient addresses: normalisation, IDNA and the public-suffix split,
and where mail to an address really goes (:func:`read_destination`).

Everything here is pure and cached: the gateway calls it on every recipient.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection
from contextlib import suppress
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from enum import StrEnum
from functools import lru_cache
from typing import NamedTuple

import idna
from publicsuffixlist import PublicSuffixList

from typogate.errors import TypogateError

# ICANN section only: a mail domain under a private suffix (blogspot.com, github.io)
# is still registered under the ICANN suffix from the sender's point of view.
# Without the implicit "*" rule, so that a real suffix (.gr) is told from a slip (.con);
# an unknown last label is still the suffix of its domain, as "*" would make it.
# Looked up in Unicode form, as the list is written: no A-label copy of every rule to make
# at start-up (that took two thirds of the list's ~30 ms load).
_PSL = PublicSuffixList(only_icann=True, accept_unknown=False, accept_encoded_idn=False)


# The common case, checked without the full validator: a dot-atom local part and an
# all-ASCII letter-digit-hyphen domain. Anything else (quoted local parts, Unicode,
# xn-- labels, odd lengths) goes through email-validator, which has the last word.
_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~\-"  # the hyphen escaped: more follows in a class
_ATEXT_LOCAL = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*")
# RFC 5321's Dot-string, with RFC 6531's UTF-8 in its atoms: a local part that needs no quotes.
_DOT_STRING = re.compile(rf"[{_ATEXT}\u0080-\U0010ffff]+(?:\.[{_ATEXT}\u0080-\U0010ffff]+)*")
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)  # RFC 5321: a backslash and what it quotes
_LDH_DOMAIN = re.compile(
    r"(?:(?!xn--)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?!xn--)[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?"
)
# A lone surrogate: how Python reads a byte that is not UTF-8 (errors="surrogateescape").
_SURROGATE = re.compile("[\ud800-\udfff]")
_UNWRITABLE = re.compile("[\x00\ud800-\udfff]")


class InvalidAddress(TypogateError, ValueError):
    """A recipient address or domain that is not valid mail syntax.

    The message says what is wrong in words a sender understands.
    """

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"{text!r}: {reason}")
        self.text = text
        self.reason = reason


class Domain(NamedTuple):
    """A normalised domain name, both IDNA forms, split at its public suffix.

    ``ascii`` is the A-label form (``xn--bcher-kva.de``), ``unicode`` the U-label form
    (``bücher.de``); they are the same domain. ``suffix`` is the public suffix
    (``co.uk``), ``name`` everything left of it (``mail.example``) and ``registrable``
    the last name label plus the suffix (``example.co.uk``). The split parts are in
    Unicode form, as a person reads and types them.
    """

    ascii: str
    unicode: str
    suffix: str
    name: str
    registrable: str

    @property
    def subdomain(self) -> str:
        """Labels left of the registrable domain (``mail`` in ``mail.example.com``)."""
        return self.name.rpartition(".")[0]

    def __str__(self) -> str:  # noqa: D105
        return self.unicode


@dataclass(frozen=True, slots=True)
class Recipient:
    """A parsed mail address: local part and domain."""

    local: str
    domain: Domain


@lru_cache(maxsize=65_536)
def parse_domain(text: str) -> Domain:
    """Normalise a domain (case, whitespace, trailing dot, IDNA) and split it.

    Raises :class:`InvalidAddress` when ``text`` is not a valid mail domain.
    """
    raw = text.strip().lower()
    if raw.endswith(".") and not raw.endswith(".."):
        raw = raw[:-1]
    if raw.startswith("[") or not raw:
        raise InvalidAddress(text, "not a domain name")
    if _LDH_DOMAIN.fullmatch(raw) and len(raw) <= 253:
        return _split(raw, raw)
    # Loaded only here: the common all-ASCII domain never needs it (~25 ms of start-up).
    from email_validator import EmailNotValidError, validate_email

    try:
        checked = validate_email(f"postmaster@{raw}", check_deliverability=False)
    except EmailNotValidError as error:
        raise InvalidAddress(text, _domain_message(str(error))) from None
    # The validator has done the IDNA round trip (and rejected a bad xn-- label): its
    # ``domain`` is the Unicode form of ``ascii_domain``, no second decoding needed.
    return _split(checked.ascii_domain, checked.domain)


def _domain_message(message: str) -> str:
    # email-validator speaks of "the part after the @-sign"; for a bare domain say "domain".
    for mail_words, domain_words in (
        ("The part after the @-sign", "The domain"),
        ("An email address", "A domain"),
        ("immediately after the @-sign", "at its start"),
        ("after the @-sign", "in the domain"),
    ):
        message = message.replace(mail_words, domain_words)
    return message


def _split(ascii_form: str, unicode_form: str) -> Domain:
    found = _PSL.publicsuffix(unicode_form) or unicode_form.rsplit(".", 1)[-1]
    if found == unicode_form:
        raise InvalidAddress(ascii_form, "is a public suffix, not a domain anyone receives mail at")
    labels = unicode_form.split(".")
    cut = len(labels) - found.count(".") - 1
    name, suffix = ".".join(labels[:cut]), ".".join(labels[cut:])
    return Domain(ascii_form, unicode_form, suffix, name, f"{labels[cut - 1]}.{suffix}")


@lru_cache(maxsize=4096)
def is_real_suffix(suffix: str) -> bool:
    """True when ``suffix`` is on the Public Suffix List (``gr``, ``com.ar``; not ``con``)."""
    return bool(_PSL.is_public(suffix))


def parse_address(text: str) -> Recipient:
    """Parse a recipient address (``john@army.ml``, ``<john@army.ml>``) into parts.

    Raises :class:`InvalidAddress` with a readable reason when the syntax is wrong.
    """
    address = text.strip()
    if address.startswith("<") and address.endswith(">"):
        address = address[1:-1].strip()
    at = address.rfind("@")
    if at <= 0:
        raise InvalidAddress(text, "an address needs a local part, an @-sign and a domain")
    local, domain_text = address[:at], address[at + 1 :]
    if _ATEXT_LOCAL.fullmatch(local) and len(local) <= 64:
        # Cached only when short: padded input must not grow the cache's keys.
        parse = parse_domain if len(domain_text) <= 254 else parse_domain.__wrapped__
        return Recipient(local, parse(domain_text))
    from email_validator import EmailNotValidError, validate_email

    try:
        checked = validate_email(address, check_deliverability=False, allow_quoted_local=True)
    except EmailNotValidError as error:
        raise InvalidAddress(text, str(error)) from None
    return Recipient(checked.local_part, parse_domain(checked.ascii_domain))


class Route(StrEnum):
    """How the destination was read from an address, as Postfix's rewriting reads it."""

    AT_SIGN = "at-sign"  # the host after the last @-sign: john@army.ml
    PERCENT_HACK = "percent-hack"  # john%army.ml@own-host: Postfix makes it john@army.ml
    BANG_PATH = "bang-path"  # army.ml!john@own-host: Postfix makes it john@army.ml
    OWN_HOST = "own-host"  # ends on one of the MTA's own domains: the mail stays there


@dataclass(frozen=True, slots=True)
class Destination:
    """Where mail to one address goes, and what was read to find out.

    ``host`` is the destination host as Postfix and UTS #46 map it (``army.ml`` for
    ``ARMY.ML`` with a U+200B in it, ``[192.0.2.1]``, ``localhost``), and ``written`` that
    host as the address wrote it, its case kept (``aoI.com``, which its reader sees as
    ``aol.com``), wherever the route found it: after the @-sign, in the percent hack or a
    bang path, before a comment. ``domain`` is that
    host as a :class:`Domain`, or ``None`` when there is no domain name to judge: an
    address literal, a bare host name or public suffix (``localhost``, ``co.uk``), or the
    MTA's own domain (``route`` is then :attr:`Route.OWN_HOST`). ``local`` is the local
    part handed on, without quotes. ``alternatives`` are the other destinations the
    address may reach when it reads more than one way (the MTA's own domains unknown, an
    unquoted local part with quotes, comments or commas in it): a gatekeeper judges all.
    """

    local: str
    host: str
    written: str
    domain: Domain | None
    route: Route
    alternatives: tuple[Destination, ...] = ()

    @property
    def address(self) -> str:
        """The address as delivered: ``john@army.ml`` for ``john%army.ml@own-host``
        (``postmaster`` for ``postmaster``, which Postfix qualifies with its own origin)."""
        if not self.host:
            return self.local
        return f"{self.local}@{self.domain.unicode if self.domain else self.host}"


def ascii_form(text: str) -> str:
    """A domain, or an address's domain, in its A-label form (``xn--rmy-5cd.mil`` for
    ``аrmy.mil``, with a Cyrillic ``а``): as DNS and a client without SMTPUTF8 read it, and
    the one form that shows a look-alike for what it is. ``text`` itself when it is ASCII or
    no name IDNA writes."""
    if text.isascii():
        return text
    local, at, domain = text.rpartition("@")
    try:
        return f"{local}{at}{parse_domain(domain).ascii}"
    except InvalidAddress:
        return text


def is_utf8(text: str) -> bool:
    """Whether ``text`` holds no byte that was not UTF-8 (read as a lone surrogate,
    Python's ``surrogateescape``): text that can be written on as it is."""
    return text.isascii() or _SURROGATE.search(text) is None


def writable_form(text: str) -> str:
    """``text`` with each byte that was not UTF-8 (see :func:`is_utf8`) and each NUL as
    U+FFFD: text that every database takes (PostgreSQL refuses a NUL in text, and no
    driver writes a lone surrogate), as do a JSON reader and a message (RFC 5322 allows
    no NUL), where the characters themselves could not be written."""
    if "\x00" not in text and is_utf8(text):  # nearly every text: no copy
        return text
    return _UNWRITABLE.sub("\ufffd", text)


def printable_form(text: str) -> str:
    """``text`` with each character that would not show as itself written as its escape:
    a control (``\\x1b``), a direction override (``\\u202e``), an invisible or unusual space
    (``\\xa0``). An address or a domain from mail, shown in a terminal or on a page, then
    cannot move the cursor, set a window's title, run a line backwards or hide a letter."""
    if text.isprintable():  # nearly every name: no copy
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def external_form(address: str) -> str:
    """``address``, whose local part is unquoted as Postfix hands it on (``john doe@army.ml``),
    as a person writes it: the local part quoted when it is no RFC 5321 Dot-string
    (``"john doe"@army.ml``), so that it reads back as the same mailbox."""
    local, at, host = address.rpartition("@")
    if not at or _DOT_STRING.fullmatch(local):
        return address
    quoted = local.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}"@{host}'


def internal_form(address: str) -> str:
    """``address`` as Postfix hands it to a policy service: a quoted local part unquoted
    (``sue doe@example.org`` for ``"sue doe"@example.org``), the inverse of
    :func:`external_form`; anything else unchanged."""
    if not address.startswith('"'):  # the common case, and on every party's evidence
        return address
    local, at, host = address.rpartition("@")
    if not at or len(local) < 2 or local[-1] != '"':
        return address
    unquoted = _QUOTED_PAIR.sub(r"\1", local[1:-1])
    return f"{unquoted}@{host}"


def written_form(address: str) -> str:
    """``address`` as its sender writes it, whether it came quoted (as the milter and a log
    show it: ``"Sue Doe"@example.org``) or unquoted (as a policy service is handed it:
    ``sue doe@example.org``): what to show a person, or hand to a program that reads it."""
    return external_form(internal_form(address))


# Bounds on what one address may make the reader do: Postfix answers a hostile address
# with a few readings and hops, never thousands.
MAX_READINGS = 8
MAX_HOPS = 32


def read_destination(text: str, own_domains: Collection[str] | None = None) -> Destination:
    """Read where mail to ``text`` goes, whatever its local part looks like.

    The destination is the host after the last @-sign, mapped as Postfix 3.7 and UTS #46
    map it (case, full-width letters, ideographic and full-width dots, ignored characters
    such as U+200B, U+00AD, U+FEFF; one trailing dot), read from the address as written
    (quotes, backslashes and comments as RFC 5322 reads them) and from its unquoted form
    (what Postfix hands a policy service). When that host is one of ``own_domains`` (the
    MTA's ``mydestination``, in :func:`host_name` form), Postfix's rewriting goes on as it
    does: the host is stripped, then a bang path (``army.ml!john``) or the percent hack
    (``john%army.ml``) gives the next destination. With ``own_domains`` unknown (``None``)
    every host along that route is a possible destination (``alternatives``).

    An address with no @-sign at all (``postmaster``) stays on the MTA (``host`` empty),
    unless a bang path or the percent hack routes it on.

    Raises :class:`InvalidAddress` when no destination can be read: an empty address,
    nothing after the last @-sign, a host that is not a domain name or address literal
    after mapping, or more readings or hops than a real address has.
    """
    if not is_utf8(text):  # no one could write the address on
        raise InvalidAddress(writable_form(text), _NOT_UTF8)
    address = text.strip()
    if address.startswith("<") and address.endswith(">"):
        address = address[1:-1].strip()
    # A source route (<@relay:john@army.ml>) is dropped, as Postfix and RFC 5321 drop it;
    # without angle brackets Postfix may read the route itself, so that is read too.
    route, colon, rest = address.partition(":") if address.startswith("@") else ("", "", "")
    texts = (rest, route) if colon else (address,)
    own = None if own_domains is None else frozenset(own_domains)
    found: dict[tuple[str, Route], Destination] = {}
    failures: list[InvalidAddress] = []
    for local, host in (reading for part in texts for reading in _readings(text, part)):
        try:
            for destination in _route(text, local, host, own):
                found.setdefault((destination.host, destination.route), destination)
        except InvalidAddress as error:
            failures.append(error)
    if not found and not failures:
        found = _unqualified(text, address, own)
    if not found:
        raise failures[0] if failures else InvalidAddress(text, _NO_AT_SIGN)
    if len(found) > MAX_READINGS:
        raise InvalidAddress(text, _TOO_MANY_READINGS)
    first, *others = found.values()
    return Destination(
        first.local, first.host, first.written, first.domain, first.route, tuple(others)
    )


def host_name(text: str) -> str:
    """A host as Postfix and UTS #46 map it: ``army.ml`` for ``ＡＲＭＹ。ml.`` or for
    ``army.ml`` with a U+00AD in it; address literals (``[192.0.2.1]``) lower-cased.

    Raises :class:`InvalidAddress` when the text cannot be mapped to a host name.
    """
    return _host_name(text, text)


_NO_AT_SIGN = "an address needs an @-sign and a domain after it"
# Where a route names no host (john@, bad@@army.mil, %@localhost, !john@localhost).
_NOTHING_THERE = {
    Route.AT_SIGN: "nothing after an @-sign: no domain to send it to",
    Route.PERCENT_HACK: "nothing after a %: no host to route it to",
    Route.BANG_PATH: "nothing before a !: no host to route it to",
}
_NOT_UTF8 = "not valid UTF-8"
_TOO_MANY_READINGS = "the address reads too many ways to tell where it goes"


def _readings(text: str, address: str) -> list[tuple[str, str]]:
    """(local part, host) pairs ``address`` may mean: as RFC 5322 tokens, as plain text
    split at its last @-sign, and each comma-separated part, in that order."""
    readings: list[tuple[str, str]] = []
    plain, at_signs, commas = _unquote(address)
    if at_signs:
        readings.append((plain[: at_signs[-1]], plain[at_signs[-1] + 1 :]))
    local, at, host = address.rpartition("@")
    if at and (local, host) not in readings:
        readings.append((local, host))
    if commas and at_signs:  # a list: Postfix's own reader takes one of its parts
        for start, end in zip((-1, *commas), (*commas, len(plain)), strict=True):
            local, at, host = plain[start + 1 : end].rpartition("@")
            if at and (local, host) not in readings:
                readings.append((local, host))
                if len(readings) > MAX_READINGS:  # checked as they come: linear time
                    raise InvalidAddress(text, _TOO_MANY_READINGS)
    return readings


def _unqualified(
    text: str, address: str, own: frozenset[str] | None
) -> dict[tuple[str, Route], Destination]:
    """An address with no @-sign (``postmaster``): Postfix qualifies it with its own
    origin, where a bang path or the percent hack may still route it on."""
    plain = _unquote(address)[0].strip()
    if not plain:
        raise InvalidAddress(text, "an empty address")
    if any(ch.isspace() or not ch.isprintable() for ch in plain):
        raise InvalidAddress(text, _NO_AT_SIGN)  # words, not a mailbox name
    hop = _next_hop(plain)
    if hop is None:
        return {("", Route.OWN_HOST): Destination(plain, "", "", None, Route.OWN_HOST)}
    local, host, route = hop
    return {(d.host, d.route): d for d in _route(text, local, host, own, route)}


# Characters of a display name read: the message's, any length; a name no mail program
# shows whole, as the text an RFC 2047 decoder reads (a word of it scans to its end).
MAX_DISPLAY_NAME = 4096
_QUOTE_OR_PAIR = re.compile(r'\\(.)|"', re.DOTALL)


def display_names(header: str) -> list[tuple[str, str]]:
    """(display name, address) of each mailbox of an address list as a To or Cc header
    writes it (``"john@army.mil" <john@evil.com>, jane@army.mil``), each name as a mail
    program shows it (:func:`display_name`), ``""`` for a mailbox without one. One pass
    over the header, whatever its shape: it is the message's, and a hostile one nests
    comments and quotes that a recursive reader takes quadratic time or all its stack on."""
    found: list[tuple[str, str]] = []
    quoted, depth = False, 0  # inside "..." / how deep inside (comments)
    start, angle = 0, -1  # where this mailbox begins; its "<" (-2: its ">" came)
    i, n = 0, len(header)
    while i < n:
        ch = header[i]
        if ch == "\\" and (quoted or depth):
            i += 2
            continue
        if quoted:
            quoted = ch != '"'
        elif depth:
            depth += 1 if ch == "(" else -1 if ch == ")" else 0
        elif ch == '"':
            quoted = True
        elif ch == "(":
            depth = 1
        elif ch == "<" and angle == -1:
            angle = i
        elif ch == ">" and angle >= 0:
            found.append((display_name(header[start:angle]), header[angle + 1 : i].strip()))
            angle = -2
        elif ch in ",;":  # the next mailbox, or a group's end
            if angle == -1 and header[start:i].strip():
                found.append(("", header[start:i].strip()))
            start, angle = i + 1, -1
        elif ch == ":" and angle == -1:  # a group's name (team: a@b, c@d;), no one's
            start = i + 1
        i += 1
    if angle == -1 and header[start:].strip():
        found.append(("", header[start:].strip()))
    return found


def display_name(text: str) -> str:
    """A display name as a mail program shows it: quotes and backslash escapes taken
    out, encoded words (RFC 2047) decoded, blanks trimmed; its first ``MAX_DISPLAY_NAME``
    characters only."""
    shown = _QUOTE_OR_PAIR.sub(lambda found: found[1] or "", text[:MAX_DISPLAY_NAME])
    # A word that does not decode is shown as written.
    with suppress(HeaderParseError, LookupError, UnicodeError, ValueError):
        shown = str(make_header(decode_header(shown))) if "=?" in shown else shown
    return shown.strip()


def _unquote(address: str) -> tuple[str, list[int], list[int]]:
    """``address`` with quotes, backslash escapes and (comments) taken out, as Postfix's
    RFC 822 reader does, and where its @-signs and commas outside quotes are."""
    if not any(special in address for special in '"\\('):  # nothing to take out
        at_signs = [found.start() for found in re.finditer("@", address)]
        return address, at_signs, [found.start() for found in re.finditer(",", address)]
    out: list[str] = []
    at_signs = []
    commas: list[int] = []
    i, n = 0, len(address)
    while i < n:
        ch = address[i]
        if ch == "\\" and i + 1 < n:
            out.append(address[i + 1])
            i += 2
        elif ch == '"':
            i += 1
            while i < n and address[i] != '"':
                if address[i] == "\\" and i + 1 < n:
                    i += 1
                out.append(address[i])
                i += 1
            i += 1
        elif ch == "(":
            depth = 1
            i += 1
            while i < n and depth:
                if address[i] == "\\":
                    i += 1
                elif address[i] in "()":
                    depth += 1 if address[i] == "(" else -1
                i += 1
        else:
            if ch == "@":
                at_signs.append(len(out))
            elif ch == ",":
                commas.append(len(out))
            out.append(ch)
            i += 1
    return "".join(out), at_signs, commas


def _route(
    text: str,
    local: str,
    host: str,
    own: frozenset[str] | None,
    route: Route = Route.AT_SIGN,
) -> list[Destination]:
    """Follow Postfix's rewriting from ``local@host``: every destination it may reach."""
    found: list[Destination] = []
    for _ in range(MAX_HOPS):
        if not host.strip():
            raise InvalidAddress(text, _NOTHING_THERE[route])
        name = _host_name(text, host)
        if own is None or name not in own:
            found.append(Destination(local, name, host.strip(), _judged_domain(text, name), route))
            if own is not None:
                return found
        hop = _next_hop(local)
        if hop is None:
            if own is not None:
                found.append(Destination(local, name, host.strip(), None, Route.OWN_HOST))
            return found
        local, host, route = hop
    raise InvalidAddress(text, f"the address routes through more than {MAX_HOPS} hosts")


def _next_hop(local: str) -> tuple[str, str, Route] | None:
    """Postfix's next step once an own host is stripped (resolve_dequoted_address = yes:
    the local part is read unquoted): a remaining @-sign, else the first ``!`` of a bang
    path, else the last ``%`` of the percent hack; ``None`` when the mail stays."""
    before, at, after = local.rpartition("@")
    if at:
        return before, after, Route.AT_SIGN
    site, bang, user = local.partition("!")
    if bang:
        return user, site, Route.BANG_PATH
    before, percent, after = local.rpartition("%")
    if percent:
        return before, after, Route.PERCENT_HACK
    return None


def _host_name(text: str, host: str) -> str:
    name = host.strip()
    if name.startswith("[") and name.endswith("]"):
        if _is_address_literal(name[1:-1]):
            return name.lower()
        # A name in brackets: sendmail delivers to that host without its MX (Postfix refuses
        # it), so it is where the mail goes.
        name = name[1:-1].strip()
    if not name.isascii():
        try:
            # Non-transitional and without the STD3 rules: the mapping ICU does for Postfix
            # (midna_domain.c, enable_idna2003_compatibility = no).
            name = idna.uts46_remap(name, std3_rules=False, transitional=False)
        except (idna.IDNAError, ValueError) as error:
            raise InvalidAddress(text, f"{host!r} is not a domain name: {error}") from None
    name = name.lower()
    if name.endswith(".") and not name.endswith(".."):
        name = name[:-1]
    if not name:
        raise InvalidAddress(text, _NO_AT_SIGN)
    return name


# RFC 5321's General-address-literal: a tag (letters, digits, hyphens) and its content.
_GENERAL_LITERAL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?:[!-Z^-~]+")


def _is_address_literal(text: str) -> bool:
    """Whether ``text`` (between the brackets) is an address literal of RFC 5321: an IPv4
    address, ``IPv6:`` and an IPv6 address, or another tag and its content."""
    tag, colon, address = text.partition(":")
    try:
        if not colon:
            ipaddress.IPv4Address(text)
        elif tag.lower() == "ipv6":
            ipaddress.IPv6Address(address)
        else:
            return _GENERAL_LITERAL.fullmatch(text) is not None and "." not in tag
    except ValueError:
        return False
    return True


def _judged_domain(text: str, name: str) -> Domain | None:
    """``name`` as a :class:`Domain`; ``None`` for an address literal, a bare host name or a
    public suffix (no domain name anyone could have mistyped)."""
    if name.startswith("["):
        return None
    if "." not in name or _PSL.is_public(name):
        try:
            idna.encode(name, uts46=False)
        except (idna.IDNAError, ValueError, UnicodeError) as error:
            raise InvalidAddress(text, f"{name!r} is not a host name: {error}") from None
        return None
    try:
        return parse_domain(name)
    except InvalidAddress as error:
        raise InvalidAddress(text, error.reason) from None
