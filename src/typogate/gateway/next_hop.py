"""A session with the next hop that mirrors one client transaction.

The SMTP proxy relays each client session to its next hop, and the sink forwards a chosen
recipient to the registrant's own server; both open the session at the client's MAIL, pass
the next hop's answers back unchanged and close it with the client's session, so nothing is
ever acknowledged that the next hop did not accept.
"""

from __future__ import annotations

import asyncio

import aiosmtplib

from typogate.gateway.answers import one_line

# What a next-hop session can fail with: its refusals, timeouts and the network.
FAILURES = (aiosmtplib.SMTPException, OSError)


class NextHop:
    """One SMTP session with ``address`` (host, port), begun with the client's sender."""

    def __init__(self, address: tuple[str, int], client: aiosmtplib.SMTP, encoding: str) -> None:
        self.address = address
        self.client = client
        self._encoding = encoding  # UTF-8 addresses once the sender said SMTPUTF8

    @classmethod
    async def open(
        cls,
        address: tuple[str, int],
        sender: str,
        *,
        options: list[str] | None = None,
        timeout: float = 60.0,
    ) -> tuple[NextHop, aiosmtplib.SMTPResponse]:
        """Connect, greet and give the sender (``""`` for a bounce) with the client's MAIL
        ``options`` (``SMTPUTF8``, ``BODY=8BITMIME``, and ``SIZE=`` where the next hop
        offers it); the session and the next hop's reply to MAIL. Raises what
        :data:`FAILURES` name, or ``ValueError`` for a sender aiosmtplib cannot write; the
        connection never outlives a failure or a cancellation (the client went away
        meanwhile)."""
        host, port = address
        options = options or []
        encoding = "utf-8" if "SMTPUTF8" in (option.upper() for option in options) else "ascii"
        client = aiosmtplib.SMTP(hostname=host, port=port, timeout=timeout, start_tls=False)
        try:
            await client.connect()
            await client.ehlo()
            if not client.supports_extension("size"):
                # RFC 1870: SIZE is a forecast, said only where it is offered. The other
                # parameters change what the next hop must do, so it hears them and refuses
                # what it cannot take.
                options = [option for option in options if not option.upper().startswith("SIZE=")]
            reply = await client.mail(sender, options=options, encoding=encoding)
        except BaseException:
            client.close()
            raise
        return cls(address, client, encoding), reply

    async def rcpt(self, recipient: str) -> aiosmtplib.SMTPResponse:
        """Give one recipient; the next hop's reply. Raises what :data:`FAILURES` name, or
        ``ValueError`` for an address that needs SMTPUTF8 the sender did not ask for."""
        return await self.client.rcpt(recipient, encoding=self._encoding)

    async def deliver(self, content: bytes, unreachable: str) -> str:
        """Send the message and end the session; the client's answer: the next hop's reply,
        its refusal, or ``unreachable`` when it gave none."""
        try:
            reply = await self.client.data(content)
        except FAILURES as error:
            return refusal_of(error) or unreachable
        finally:
            await self.close()
        return passed_on(reply)

    async def close(self) -> None:
        """Say QUIT, or drop the connection when the next hop no longer listens or the
        client's session is cancelled meanwhile (it went away)."""
        try:
            await self.client.quit()
        except FAILURES:
            self.client.close()
        except asyncio.CancelledError:
            self.client.close()
            raise


def passed_on(reply: aiosmtplib.SMTPResponse) -> str:
    """The next hop's reply as the client's answer, on one protocol line."""
    return f"{reply.code} {one_line(reply.message)}"


def refusal_of(error: BaseException) -> str | None:
    """The next hop's own refusal in ``error``, passed to the client unchanged; ``None``
    when the next hop gave no answer (unreachable, timed out)."""
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return f"{error.code} {one_line(error.message)}"
    return None
