"""How a reader reads a recipient's domain, and the text a mail program shows beside it,
where the bytes say something else: the names a reader sees in front of another
registrable domain (whole, with its dot left out or a hyphen for it, after a word and a
hyphen: ``army.mil.evil.com``, ``army-mil.evil.com``, ``login-army.mil.evil.com``), and the
addresses a reader sees in a display name or a local part (``"ceo @ army.mil"``).

Functions of text alone, each bounded however hostile the text: which of what they find
is a domain we protect or write to is the judge's question (:mod:`typogate.policy.judge`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import suppress
from itertools import islice

from typogate.domains import (
    MIDDLE_DOT,
    Domain,
    InvalidAddress,
    latin_readings,
    on_screen,
    parse_domain,
)
from typogate.domains.names import MAX_DISPLAY_NAME, is_real_suffix

MAX_DOMAIN_LENGTH = 254  # RFC 1035's 253, and a trailing dot
# Beginnings of one name judged as names of their own (gmial.com in gmial.com.evil.com):
# each costs what judging a name costs, and a hostile name may have a hundred labels.
MAX_FRONTS_JUDGED = 3
# What stands between the words of a display name, an address among them (John Doe
# (john@army.mil), 'john@army.mil'): split on, in one pass, however long the name.
_BETWEEN_WORDS = re.compile(r"[\s\"'<>()\[\],;:]+")
# What stands around an @-sign that a reader's eye passes over: spaces, and after it a
# second one or a bracket (j @ army.mil, j@@army.mil, j@[army.mil] read as j@army.mil).
# The spaces before it are read from the first of them only: from each, a name of 4,096
# spaces took 21 ms.
_AROUND_AT_SIGN = re.compile(r"(?<!\s)\s*@[\s@\[]*")
# The longest suffix looked for at the end of a label with its dot left out (gmailcom):
# the generic and country ones a mail domain ends in, not the sixty letters one may have.
_LONGEST_MERGED_SUFFIX = 6
# The hyphens of a label after its first letter: where a beginning of it may end; the
# first eight of each label are read (the built-in lists' names have three at most, and a
# hostile label may have thirty).
_HYPHEN = re.compile(r"(?<=.)-+")
_HYPHENS_READ = 8
# The most hyphen-separated words a name we know is read from inside a label
# (partner-firm-com in my-partner-firm-com-login), and the most beginnings after a hyphen
# a name is read from (login-army.mil.evil.com): each costs a parse or two.
_WORDS_READ = 4
_INSIDE_READ = 48
FOR_ITS_DOT = "a hyphen for its dot"  # how army-mil is written (unmerged)
# A hyphen that begins or ends a label: no host has one, and a reader's eye passes it.
_EDGE_HYPHENS = re.compile(r"(?<![^.])-+|-+(?![^.])")
parse_once = parse_domain.__wrapped__  # for texts parsed once: kept out of the hot cache


def addresses_seen(text: str) -> Iterator[tuple[str, str]]:
    """(person, host) of each address a reader sees in ``text``, a display name or a local
    part: read as a screen shows it (:func:`on_screen`), its first ``MAX_DISPLAY_NAME``
    characters, with spaces around an @-sign, a second @-sign or a bracket after one and
    a sentence's ``?`` or ``!`` after it passed over (``j @ army.mil``, ``j@[army.mil]``,
    ``Is it j@army.mil?``)."""
    seen = _AROUND_AT_SIGN.sub("@", on_screen(text[:MAX_DISPLAY_NAME]))
    for word in _BETWEEN_WORDS.split(seen):
        person, at, host = word.partition("@")
        host = host.rstrip(".?!")
        if at and person and host and "@" not in host and len(host) <= MAX_DOMAIN_LENGTH:
            yield person, host


def fronts(name: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each name a reader may see in front of the rest of ``name``: its
    beginnings that end at a dot or a hyphen after its first dot (``army.mil`` of
    ``army.mil.evil.com`` and of ``army.mil-login.com``), and then, for the first
    ``_INSIDE_READ``, such beginnings after one of the first ``_HYPHENS_READ`` hyphens of
    its first ``MAX_FRONTS_JUDGED`` labels (``army.mil`` of ``login-army.mil.evil.com``)."""
    yield from _ends(name, 0)
    front_labels = len(".".join(name.split(".")[:MAX_FRONTS_JUDGED]))
    after_hyphens = (found.end() for found in _HYPHEN.finditer(name, 0, front_labels))
    inside = (
        front for start in islice(after_hyphens, _HYPHENS_READ) for front in _ends(name, start)
    )
    yield from islice(inside, _INSIDE_READ)


def _ends(name: str, start: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each beginning of ``name[start:]`` that ends at a dot or a hyphen
    after its first dot."""
    first_dot = name.find(".", start)
    if first_dot < 0:
        return
    for end in range(first_dot + 1, len(name)):
        if name[end] in ".-":
            yield start, end


def pieces(name: str) -> Iterator[tuple[str, bool]]:
    """Runs of up to ``_WORDS_READ`` hyphen-separated words of each of the first
    ``MAX_FRONTS_JUDGED`` labels of ``name``, split at its first ``_HYPHENS_READ``
    hyphens, each with whether it begins after a hyphen: ``army``, ``army-mil`` of
    ``army-mil.evil`` and of ``army-mil-login``, and ``army-mil`` of
    ``secure-army-mil``; a label in front whole, but not the registrable one (which the
    model reads as a merged suffix itself)."""
    labels = name.split(".")
    for at, label in enumerate(labels[:MAX_FRONTS_JUDGED]):
        hyphens = list(islice(_HYPHEN.finditer(label), _HYPHENS_READ))
        starts = [0, *(found.end() for found in hyphens)]
        ends = [*(found.start() for found in hyphens), len(label)]
        for first, start in enumerate(starts):
            for end in ends[first : first + _WORDS_READ]:
                whole = not start and end == len(label)
                if not whole or at < len(labels) - 1:
                    yield label[start:end], start > 0


def unmerged(label: str) -> Iterator[tuple[str, str]]:
    """The names a ``label`` may be with a dot put back, each with how it was written:
    ``army-mil``, ``army.mil`` with a hyphen for its dot (or two), where ``mil`` is a
    real suffix; ``gmailcom``, ``gmail.com`` with its dot left out (and ``gmailc.om``,
    ``gmai.lcom``: each ending of two to six letters, which the caller looks up)."""
    before, hyphen, after = label.rpartition("-")
    before = before.rstrip("-")
    if hyphen and before and is_real_suffix(after):
        yield f"{before}.{after}", FOR_ITS_DOT
    for cut in range(2, min(len(label), _LONGEST_MERGED_SUFFIX + 1)):
        if "-" not in (ending := label[-cut:]):
            yield f"{label[:-cut]}.{ending}", "its dot left out"


def as_read(host: str) -> list[Domain]:
    """The domains a reader takes ``host`` in a display name for: as it is, or where no
    domain may hold it, with a middle dot as a full stop or as nothing (``army·mil``), its
    letters read in Latin (``⍺rmy.mil``, with a symbol, reads ``army.mil``), and without a
    hyphen at a label's edge (``-army.mil``); nothing for a word that reads as no domain
    (``localhost``)."""
    try:
        return [parse_once(host)]
    except InvalidAddress:
        pass
    texts = dict.fromkeys((host, host.replace(MIDDLE_DOT, ".")))
    readings = (reading for text in texts for reading in (text, *latin_readings(text)))
    read = []
    for reading in dict.fromkeys(_EDGE_HYPHENS.sub("", r) for r in readings):
        with suppress(InvalidAddress):
            read.append(parse_once(reading))
    return read
