"""What an adapter knows about a message when it asks about a recipient.

Its own module, below both the gatekeeper that decides with it and the notices that quote
it, so that neither has to import the other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Envelope:
    """What the adapter knows about the message when it asks: who sends, from where."""

    sender: str | None = None
    sasl_username: str | None = None
    queue_id: str | None = None
    client_address: str | None = None
    # What only an adapter that sees the whole message knows (the milter), for notices.
    recipients: tuple[str, ...] = ()
    subject: str | None = None
    date: str | None = None
    message_id: str | None = None
    # The display names the To and Cc headers show recipients under, by address in lower
    # case, where a name has an @-sign in it ("john@army.mil" <john@evil.com>).
    shown: tuple[tuple[str, str], ...] = ()

    def shown_as(self, recipient: str) -> str | None:
        """The display name the message shows ``recipient`` under, if one names an address."""
        if not self.shown:  # nearly every message: no name with an @-sign in it
            return None
        wanted = recipient.lower()
        return next((name for address, name in self.shown if address == wanted), None)
