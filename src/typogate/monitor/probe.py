"""Does a look-alike's mail server take mail for any address? An SMTP probe, off by default.

The probe connects to the look-alike's first reachable mail exchanger (or, for an
``a_only`` domain, its address; five addresses at most), says EHLO, ``MAIL FROM:<>`` and
``RCPT TO`` a random address nobody has, and quits before any message. A server that
accepts that recipient accepts all: every slip towards the domain is delivered to
someone. The probed side sees the connection and the made-up address in its logs, which
is why this runs only when asked (``--probe-smtp``) and never sends a message.

Only addresses on the public internet are probed. The look-alike's owner chooses where its
mail host points: at this machine, the internal network, a cloud's metadata address. A
probe there would speak SMTP to them from inside (to the organisation's own relay, which
takes any recipient, that reads as ``accepts_all``). Such a look-alike is ``not_public``
unless the operator allows private addresses (``--probe-private``, for a lab). The same
holds for the organisation's own public networks, which only its operator can name
(``--own-network``): a look-alike pointing only there is ``own_network``, a defensive
registration of its own or a squatter aiming the probe at it.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Collection

import aiosmtplib
import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver

from typogate.monitor.mail_state import Lookup, MailFacts, MailState
from typogate.vocabulary import Probe

# The addresses tried for one look-alike, first by preference: as many as Postfix's SMTP
# client tries (smtp_mx_address_limit). Its owner may list hundreds of hosts that answer
# slowly; each address may take the timeout at every reply.
_ADDRESSES = 5


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


async def probe_accept_all(
    domain: str,
    facts: MailFacts,
    lookup: Lookup,
    *,
    port: int = 25,
    helo: str = "typogate.invalid",
    timeout: float = 10.0,
    private: bool = False,
    own: Collection[Network] = (),
) -> Probe | None:
    """Probe ``domain`` (A-label form) if its state takes mail; None when it does not.
    Addresses on no public network are left alone unless ``private``, and addresses in
    the ``own`` networks always."""
    if not facts.state.accepts_mail:
        return None
    hosts = facts.mx if facts.state is MailState.MX else (domain,)
    addresses: list[str] = []
    for host in hosts[:_ADDRESSES]:
        if len(addresses) >= _ADDRESSES:  # no host beyond them is asked about
            break
        addresses += await _addresses(host, lookup)
    addresses = addresses[:_ADDRESSES]
    ours = [address for address in addresses if _within(address, own)]
    allowed = [a for a in addresses if (private or is_public(a)) and a not in ours]
    recipient = f"typogate-probe-{secrets.token_hex(6)}@{domain}"
    for address in allowed:
        said = await _ask(address, port, helo, recipient, timeout)
        if said is not None:
            return said
    if addresses and not allowed:
        return Probe.OWN_NETWORK if ours else Probe.NOT_PUBLIC
    return Probe.UNREACHABLE


def is_public(address: str) -> bool:
    """Whether ``address`` is on the public internet: not loopback, private, link-local,
    shared, reserved or documentation space, also when written as IPv4 in IPv6."""
    ip = _ip(address)
    return ip.is_global and not ip.is_multicast


def _within(address: str, networks: Collection[Network]) -> bool:
    ip = _ip(address)
    return any(ip in network for network in networks)


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """``address`` as an IP address; IPv4 written in IPv6 as the IPv4 address it is."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


async def _addresses(host: str, lookup: Lookup) -> list[str]:
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [
        dns.nameserver.Do53Nameserver(server.host, server.port) for server in lookup.nameservers
    ]
    resolver.timeout, resolver.lifetime = lookup.timeout, lookup.timeout * lookup.tries
    found = []
    for rdtype in ("A", "AAAA"):
        try:
            found += [record.to_text() for record in await resolver.resolve(host, rdtype)]
        except dns.exception.DNSException:
            continue
    return found


async def _ask(address: str, port: int, helo: str, recipient: str, timeout: float) -> Probe | None:
    """ACCEPTS_ALL or REFUSES_UNKNOWN from one server; None when it cannot be asked."""
    client = aiosmtplib.SMTP(
        hostname=address, port=port, timeout=timeout, local_hostname=helo, start_tls=False
    )
    try:
        await client.connect()
    except (TimeoutError, aiosmtplib.SMTPException, OSError):
        return None
    try:
        await client.ehlo()
        await client.mail("")
        try:
            await client.rcpt(recipient)
        except aiosmtplib.SMTPRecipientRefused as refused:
            # A temporary refusal (greylisting) says nothing about the address.
            return Probe.REFUSES_UNKNOWN if refused.code >= 500 else None
        return Probe.ACCEPTS_ALL
    except (TimeoutError, aiosmtplib.SMTPException, OSError):
        return None
    finally:
        try:
            await client.quit()
        except (TimeoutError, aiosmtplib.SMTPException, OSError):
            client.close()
