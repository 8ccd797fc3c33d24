"""The error model: how likely is it that someone who meant ``meant`` typed ``typed``?

This is the channel half of the noisy-channel decision in DESIGN.md. Each way people and
software really get a domain wrong is an operation with a cost in nats (``-ln P``); the cost
of a typed domain given a meant one is the sum over the cheapest alignment. The constants
are the model: they were set so that one ordinary slip (a dropped letter, a neighbouring key,
``.mil`` -> ``.ml``) costs 2-4 nats and a random different name costs far more.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from rapidfuzz.distance import Levenshtein

from typogate.domains.confusables import skeleton
from typogate.domains.keyboard import adjacent
from typogate.domains.names import Domain, is_real_suffix


class Slip(StrEnum):
    """One kind of error; its value is the stable reason code reported for it."""

    OMISSION = "typo.omission"
    INSERTION = "typo.insertion"
    DOUBLING = "typo.doubling"
    KEYBOARD = "typo.keyboard"
    SUBSTITUTION = "typo.substitution"
    BITFLIP = "typo.bitflip"
    TRANSPOSITION = "typo.transposition"
    DOT = "typo.dot"
    HYPHEN = "typo.hyphen"
    SUFFIX = "typo.suffix"
    MERGED_SUFFIX = "typo.merged_suffix"
    CONFUSABLE = "typo.confusable"


# Cost in nats of each operation. Cheaper = more common in real mail.
COST_OMISSION = 4.0
COST_OMISSION_DOUBLE = 3.0  # "gogle" for "google": a doubled letter typed once
COST_INSERTION = 5.0
COST_INSERTION_NEIGHBOUR = 3.5  # fat finger: the extra key sits next to its neighbour
COST_DOUBLING = 3.0  # "gmaill"
COST_KEYBOARD = 3.5
COST_SUBSTITUTION = 6.5
COST_VOWEL = 4.5  # "hotmale", "yahu": a vowel for a vowel is spelling, not a random key
_VOWELS = frozenset("aeiouy")
COST_BITFLIP = 6.0
COST_TRANSPOSITION = 3.5
COST_DOT_DROPPED = 3.0  # "seibm.com" for "se.ibm.com"
COST_DOT_ADDED = 4.5
COST_DOT_MOVED = 3.5  # "gmailc.om"
COST_HYPHEN = 3.0
COST_ASCII_HOMOGLYPH = 3.0  # "rn" for "m", "0" for "o", "1" for "l"
COST_UNICODE_CONFUSABLE = 1.0  # a Cyrillic "а": nobody types that by accident
COST_MERGED_SUFFIX = 4.0  # "armymil.com": the whole domain typed as a name
COST_MERGED_UNUSUAL_SUFFIX = 1.5  # extra when the appended suffix is not a habitual one
_HABITUAL_SUFFIXES = frozenset({"com", "net", "org"})
# Typing one real suffix for another (.gr for .fr, .cn for .ca) is rarer than the letter
# slips suggest: the domain under the other real suffix is usually meant as written.
COST_OTHER_REAL_SUFFIX = 6.0

# Suffix confusions people make far more often than their edit distance suggests.
SUFFIX_CONFUSIONS: dict[tuple[str, str], float] = {
    ("mil", "ml"): 1.5,
    ("mil", "mi"): 2.5,
    ("mil", "mill"): 2.5,
    ("com", "co"): 1.5,
    ("com", "net"): 3.5,  # not a slip of the fingers but of memory, and common
    ("net", "com"): 3.5,
    ("com", "cm"): 2.0,
    ("com", "om"): 2.0,
    ("com", "con"): 2.0,
    ("com", "cmo"): 2.0,
    ("com", "ocm"): 2.0,
    ("com", "comm"): 2.0,
    ("com", "cpm"): 2.5,
    ("com", "vom"): 2.5,
    ("com", "xom"): 2.5,
    ("com", "cim"): 2.5,
    ("com", "coom"): 2.5,
    ("net", "ne"): 2.0,
    ("net", "nt"): 2.0,
    ("net", "nte"): 2.0,
    ("net", "bet"): 2.5,
    ("org", "og"): 2.0,
    ("org", "or"): 2.0,
    ("org", "ogr"): 2.0,
    ("gov", "gv"): 2.0,
    ("gov", "go"): 2.0,
    ("gov", "gob"): 2.5,
    ("gov", "giv"): 2.5,
    ("edu", "ed"): 2.0,
    ("edu", "eu"): 2.0,
    ("co.uk", "co"): 3.0,
    ("co.uk", "uk"): 3.0,
}


@dataclass(frozen=True, slots=True)
class Edit:
    """One operation of the alignment, in words: ``keyboard 'n' for 'm'``."""

    slip: Slip
    detail: str
    cost: float


@dataclass(frozen=True, slots=True)
class Explanation:
    """How ``typed`` could come from ``meant``: the edits and their total cost in nats."""

    edits: tuple[Edit, ...]
    cost: float

    @property
    def reason(self) -> Slip:
        """The single reason code a sender and an admin see for this explanation."""
        slips = {edit.slip for edit in self.edits}
        for decisive in (Slip.CONFUSABLE, Slip.MERGED_SUFFIX, Slip.DOT):
            if decisive in slips:
                return decisive
        if len(slips) == 1:
            return next(iter(slips))
        if Slip.SUFFIX in slips:
            return Slip.SUFFIX
        return max(self.edits, key=lambda edit: edit.cost).slip


def explain(typed: Domain, meant: Domain) -> Explanation:
    """Explain ``typed`` as a slip for ``meant``; the cost is ``-ln P(typed | meant)``."""
    if skeleton(typed.unicode) == skeleton(meant.unicode):
        return _confusable(typed, meant)
    merged = _merged_suffix(typed, meant)
    if merged is not None:
        return merged
    known = SUFFIX_CONFUSIONS.get((meant.suffix, typed.suffix))
    if known is not None:
        edit = Edit(Slip.SUFFIX, f".{meant.suffix} typed as .{typed.suffix}", known)
        if typed.name == meant.name:
            return Explanation((edit,), known)
        in_name = _align(typed.name, meant.name, len(meant.name))
        return Explanation((*in_name.edits, edit), in_name.cost + known)
    aligned = _align(typed.unicode, meant.unicode, len(meant.unicode) - len(meant.suffix))
    if (
        typed.suffix != meant.suffix
        and is_real_suffix(typed.suffix)
        and any(edit.slip is Slip.SUFFIX for edit in aligned.edits)
    ):
        other = Edit(Slip.SUFFIX, f".{typed.suffix} is a real suffix too", COST_OTHER_REAL_SUFFIX)
        return Explanation((*aligned.edits, other), aligned.cost + other.cost)
    return aligned


def _confusable(typed: Domain, meant: Domain) -> Explanation:
    if typed.unicode.isascii():
        glyphs = Levenshtein.distance(typed.unicode, meant.unicode)
        cost = COST_ASCII_HOMOGLYPH * max(1, glyphs // 2)
        detail = "look-alike letters"
    else:
        cost = COST_UNICODE_CONFUSABLE
        foreign = sorted({ch for ch in typed.unicode if not ch.isascii()})
        detail = "look-alike Unicode characters " + " ".join(
            f"{ch!r} (U+{ord(ch):04X})" for ch in foreign
        )
    return Explanation((Edit(Slip.CONFUSABLE, detail, cost),), cost)


def _merged_suffix(typed: Domain, meant: Domain) -> Explanation | None:
    # "armymil.com", "army-mil.com", "army.mil.com": the meant domain typed as a name.
    def flat(text: str) -> str:
        return text.replace(".", "").replace("-", "")

    if flat(typed.name) != flat(meant.unicode):
        return None
    cost = COST_MERGED_SUFFIX
    if typed.suffix not in _HABITUAL_SUFFIXES:
        cost += COST_MERGED_UNUSUAL_SUFFIX
    detail = f"{meant.unicode} typed as a name under .{typed.suffix}"
    return Explanation((Edit(Slip.MERGED_SUFFIX, detail, cost),), cost)


def _is_bitflip(a: str, b: str) -> bool:
    flipped = ord(a) ^ ord(b)
    return flipped & (flipped - 1) == 0


def _align(typed: str, meant: str, suffix_start: int) -> Explanation:
    """The cheapest alignment of ``meant`` into ``typed`` under the operation costs.

    A weighted optimal-string-alignment distance (Damerau's transposition included), with
    costs that depend on the letters and their neighbours, and the edits read back from it.
    """
    rows, cols = len(meant), len(typed)
    omit = [_classify("delete", i, 0, meant, typed, suffix_start) for i in range(rows)]
    extra = [_classify("insert", 0, j, meant, typed, suffix_start) for j in range(cols)]
    swapped: dict[tuple[int, int], Edit] = {}
    # cost[i][j]: meant[:i] typed as typed[:j]; step[i][j]: the last edit of that alignment.
    cost = [[0.0] * (cols + 1) for _ in range(rows + 1)]
    step: list[list[tuple[int, int, Edit | None]]] = [
        [(0, 0, None)] * (cols + 1) for _ in range(rows + 1)
    ]
    for i in range(1, rows + 1):
        cost[i][0] = cost[i - 1][0] + omit[i - 1].cost
        step[i][0] = (i - 1, 0, omit[i - 1])
    for j in range(1, cols + 1):
        cost[0][j] = cost[0][j - 1] + extra[j - 1].cost
        step[0][j] = (0, j - 1, extra[j - 1])
    for i in range(1, rows + 1):
        was = meant[i - 1]
        for j in range(1, cols + 1):
            now = typed[j - 1]
            if was == now:
                best, move = cost[i - 1][j - 1], (i - 1, j - 1, None)
            else:
                sub = swapped.get((i, j))
                if sub is None:
                    sub = swapped[i, j] = _classify(
                        "replace", i - 1, j - 1, meant, typed, suffix_start
                    )
                best, move = cost[i - 1][j - 1] + sub.cost, (i - 1, j - 1, sub)
            gone = cost[i - 1][j] + omit[i - 1].cost
            if gone < best:
                best, move = gone, (i - 1, j, omit[i - 1])
            added = cost[i][j - 1] + extra[j - 1].cost
            if added < best:
                best, move = added, (i, j - 1, extra[j - 1])
            if i > 1 and j > 1 and was == typed[j - 2] and meant[i - 2] == now and was != now:
                turn = _transposition(meant[i - 2 : i])
                if cost[i - 2][j - 2] + turn.cost < best:
                    best, move = cost[i - 2][j - 2] + turn.cost, (i - 2, j - 2, turn)
            cost[i][j] = best
            step[i][j] = move
    edits: list[Edit] = []
    i, j = rows, cols
    while i or j:
        i, j, edit = step[i][j]
        if edit is not None:
            edits.append(edit)
    edits.reverse()
    return Explanation(tuple(edits), cost[rows][cols])


def _transposition(pair: str) -> Edit:
    if "." in pair:
        return Edit(Slip.DOT, "dot moved by one letter", COST_DOT_MOVED)
    return Edit(Slip.TRANSPOSITION, f"{pair!r} typed as {pair[::-1]!r}", COST_TRANSPOSITION)


def _classify(tag: str, i: int, j: int, meant: str, typed: str, suffix_start: int) -> Edit:
    in_suffix = i >= suffix_start
    if tag == "delete":
        ch = meant[i]
        if ch == ".":
            return Edit(Slip.DOT, "dot left out", COST_DOT_DROPPED)
        if ch == "-":
            return Edit(Slip.HYPHEN, "hyphen left out", COST_HYPHEN)
        doubled = (i > 0 and meant[i - 1] == ch) or (i + 1 < len(meant) and meant[i + 1] == ch)
        slip = Slip.SUFFIX if in_suffix else Slip.OMISSION
        if doubled:
            return Edit(slip, f"double {ch!r} typed once", COST_OMISSION_DOUBLE)
        return Edit(slip, f"{ch!r} left out", COST_OMISSION)
    if tag == "insert":
        ch = typed[j]
        if ch == ".":
            return Edit(Slip.DOT, "extra dot", COST_DOT_ADDED)
        if ch == "-":
            return Edit(Slip.HYPHEN, "extra hyphen", COST_HYPHEN)
        before = typed[j - 1] if j > 0 else ""
        after = typed[j + 1] if j + 1 < len(typed) else ""
        if ch in (before, after):
            return Edit(
                Slip.SUFFIX if in_suffix else Slip.DOUBLING, f"{ch!r} doubled", COST_DOUBLING
            )
        slip = Slip.SUFFIX if in_suffix else Slip.INSERTION
        if adjacent(ch, before) or adjacent(ch, after):
            return Edit(slip, f"extra {ch!r} from a neighbouring key", COST_INSERTION_NEIGHBOUR)
        return Edit(slip, f"extra {ch!r}", COST_INSERTION)
    was, now = meant[i], typed[j]
    if "." in (was, now):
        return Edit(Slip.DOT, f"{now!r} for {was!r}", COST_DOT_ADDED)
    if "-" in (was, now):
        return Edit(Slip.HYPHEN, f"{now!r} for {was!r}", COST_HYPHEN)
    if adjacent(was, now):
        return Edit(
            Slip.SUFFIX if in_suffix else Slip.KEYBOARD, f"{now!r} for {was!r}", COST_KEYBOARD
        )
    if skeleton(was) == skeleton(now):
        return Edit(Slip.CONFUSABLE, f"{now!r} looks like {was!r}", COST_ASCII_HOMOGLYPH)
    if was in _VOWELS and now in _VOWELS:
        slip = Slip.SUFFIX if in_suffix else Slip.SUBSTITUTION
        return Edit(slip, f"{now!r} for {was!r} (a vowel)", COST_VOWEL)
    if _is_bitflip(was, now):
        return Edit(Slip.BITFLIP, f"{now!r} for {was!r} (one bit)", COST_BITFLIP)
    slip = Slip.SUFFIX if in_suffix else Slip.SUBSTITUTION
    return Edit(slip, f"{now!r} for {was!r}", COST_SUBSTITUTION)
