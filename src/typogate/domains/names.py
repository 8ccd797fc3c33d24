"""Domain names and recipient addresses: normalisation, IDNA and the public-suffix split.

Everything here is pure and cached: the gateway calls it on every recipient.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

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
_ATEXT_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LDH_DOMAIN = re.compile(
    r"(?:(?!xn--)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?!xn--)[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?"
)


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
        return Recipient(local, parse_domain(domain_text))
    from email_validator import EmailNotValidError, validate_email

    try:
        checked = validate_email(address, check_deliverability=False, allow_quoted_local=True)
    except EmailNotValidError as error:
        raise InvalidAddress(text, str(error)) from None
    return Recipient(checked.local_part, parse_domain(checked.ascii_domain))
