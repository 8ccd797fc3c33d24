"""What an adapter knows about a message when it asks about a recipient.

Its own module, below both the gatekeeper that decides with it and the notices that quote
it, so that neither has to import the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from typogate.domains import display_names, shows_an_at_sign

# The headers whose display names a sender saw the recipients under.
SHOWING_HEADERS = frozenset({"to", "cc"})
MAX_SHOWN = 1000  # names kept per message: Postfix's own default recipient limit


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


def note_shown(shown: dict[str, str], value: str) -> None:
    """Add to ``shown`` the display names a ``To`` or ``Cc`` header's ``value`` shows its
    recipients under, where a name shows an @-sign, by address in lower case: the first
    name of each address, and at most ``MAX_SHOWN`` in all (the milter's header, the
    proxy's message)."""
    if "@" not in value:  # no address in it, so no recipient shown
        return
    for display, address in display_names(value):
        if shows_an_at_sign(display) and len(shown) < MAX_SHOWN:
            shown.setdefault(address.lower(), display)
