"""The error model: how likely is it that someone who meant ``meant`` typed ``typed``?

This is the channel half of the noisy-channel decision in DESIGN.md. Each way people and
software really get a domain wrong is an operation with a cost in nats (``-ln P``); the cost
of a typed domain given a meant one is the sum over the cheapest alignment. The constants
are the model: they were set so that one ordinary slip (a dropped letter, a neighbouring key,
``.mil`` -> ``.ml``) costs 2-4 nats and a random different name costs far more.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from rapidfuzz import process
from rapidfuzz.distance import OSA, DamerauLevenshtein, Levenshtein

from typogate.domains.confusables import WIDE_LOOKALIKES, looks_like, mark_between, unaccented
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
# "é" for "e", or "e" for "é": a dead key or an autocorrection types it, and a reader overlooks
# the mark, as readily as an ASCII look-alike.
COST_ACCENT = 3.0
COST_MERGED_SUFFIX = 4.0  # "armymil.com": the whole domain typed as a name
COST_MERGED_UNUSUAL_SUFFIX = 1.5  # extra when the appended suffix is not a habitual one
_HABITUAL_SUFFIXES = frozenset({"com", "net", "org"})
# A suffix slipped into another real suffix by one slip of the fingers (.il for .mil, .et for
# .net, .gr for .fr: a letter left out, a neighbouring key): a slip whatever it lands on,
# and this small extra only says that the other country's domain could be meant as written
# (its prior and the lists say more).
COST_OTHER_REAL_SUFFIX = 1.5
# Any other way onto another real suffix (.ca for .com, two slips; .fi for .fr, a letter no
# finger slip explains) is rarer than the domain under that suffix being meant as written.
COST_OTHER_REAL_SUFFIX_SLIPS = 6.0

# A suffix cut short where it makes no suffix at all (.c for .com), or left off (a bare host,
# "jane@gmail"; also what a mail program leaves of "gmail,com"): typing stopped, one slip
# however many letters are missing; likelier for a habitual suffix (the extra above
# otherwise). A cut that lands on a real suffix (.in of .info) is read letter by letter,
# as that domain may be meant.
COST_SUFFIX_CUT_SHORT = COST_OMISSION

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


# The two government suffixes, remembered one for the other: read only with the name itself
# right, as with a slip in the name too (cliomi.gov for deomi.mil) another real name is likelier.
REMEMBERED_SUFFIXES: dict[tuple[str, str], float] = {("mil", "gov"): 3.5, ("gov", "mil"): 3.5}


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


def explain(typed: Domain, meant: Domain, budget: float = math.inf) -> Explanation | None:
    """Explain ``typed`` as a slip for ``meant``; the cost is ``-ln P(typed | meant)``.

    ``None`` when no explanation costs ``budget`` nats or less (too unlikely to matter).
    """
    if looks_like(typed.unicode, meant.unicode):
        return _confusable(typed, meant)
    merged = _merged_suffix(typed, meant) or _suffix_typed_again(typed, meant)
    if merged is not None:
        return merged
    same_name = typed.name == meant.name
    known = SUFFIX_CONFUSIONS.get((meant.suffix, typed.suffix))
    if known is None and same_name:
        known = REMEMBERED_SUFFIXES.get((meant.suffix, typed.suffix))
    if known is None and _cut_short(meant.suffix, typed.suffix):
        known = _cut_cost(meant.suffix)
    if known is not None:
        edit = _suffix_slip(meant.suffix, typed.suffix, known)
        if same_name:
            return Explanation((edit,), known)
        in_name = _align(typed.name, meant.name, len(meant.name), budget - known)
        if in_name is not None:
            budget = in_name.cost + known  # the whole-string reading must beat this
            confused = Explanation((*in_name.edits, edit), budget)
            return _aligned_whole(typed, meant, budget) or confused
    return _aligned_whole(typed, meant, budget)


def _aligned_whole(typed: Domain, meant: Domain, budget: float) -> Explanation | None:
    """Align the whole domains, dots and suffix included (``gmailc.om``: a moved dot)."""
    suffix_start = len(meant.unicode) - len(meant.suffix)
    aligned = _align(typed.unicode, meant.unicode, suffix_start, budget)
    if aligned is None:
        return None
    slips = [edit for edit in aligned.edits if edit.slip is Slip.SUFFIX]
    if slips and typed.suffix != meant.suffix and is_real_suffix(typed.suffix):
        # One key left out, doubled or next door, and no dot moved with it (coop for co.jp)
        finger = (
            len(slips) == 1
            and slips[0].cost <= COST_OMISSION
            and not any(edit.slip is Slip.DOT for edit in aligned.edits)
        )
        extra = COST_OTHER_REAL_SUFFIX if finger else COST_OTHER_REAL_SUFFIX_SLIPS
        other = Edit(Slip.SUFFIX, f".{typed.suffix} is a real suffix too", extra)
        if aligned.cost + other.cost > budget:
            return None
        return Explanation((*aligned.edits, other), aligned.cost + other.cost)
    return aligned


def within_edits(typed: str, names: Sequence[str], edits: int) -> list[tuple[int, int]]:
    """The names at most ``edits`` slips from ``typed`` as the error model counts them (a
    swap is one, around a letter left out or added two): ``(position in names, slips)``.

    Found in C in two passes: neighbours-only swaps (bit-parallel, fast) allow one edit
    more, as they read a swap around a letter as three, then the true count keeps the rest.
    """
    return [
        (position, slips)
        for name, _, position in process.extract(
            typed, names, scorer=OSA.distance, score_cutoff=edits + 1, limit=None
        )
        if (slips := DamerauLevenshtein.distance(typed, name, score_cutoff=edits)) <= edits
    ]


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


def merged(text: str) -> str:
    """A domain or name with its dots and hyphens left out: how a domain typed whole as a
    name reads (``armymil`` for ``army.mil``)."""
    return text.replace(".", "").replace("-", "")


def _merged_suffix(typed: Domain, meant: Domain) -> Explanation | None:
    # "armymil.com", "army-mil.com", "army.mil.com": the meant domain typed as a name.
    # "gmail.com.co" is the same slip, though Colombia's registry makes com.co one public
    # suffix and leaves "gmail" as the name: the fingers do not know the registry's rules.
    # What follows must be a suffix: gmail.com.hassle-me.com is a host of hassle-me.com.
    after = typed.unicode[len(meant.unicode) + 1 :]
    if merged(typed.name) == merged(meant.unicode):
        appended = typed.suffix
    elif typed.unicode.startswith(meant.unicode + ".") and is_real_suffix(after):
        appended = after
    else:
        return None
    cost = COST_MERGED_SUFFIX
    if appended not in _HABITUAL_SUFFIXES:
        cost += COST_MERGED_UNUSUAL_SUFFIX
    detail = f"{meant.unicode} typed as a name under .{appended}"
    return Explanation((Edit(Slip.MERGED_SUFFIX, detail, cost),), cost)


def _suffix_typed_again(typed: Domain, meant: Domain) -> Explanation | None:
    # "gmail.co.com", "army.ml.com": the suffix slipped, and the meant or a habitual suffix
    # was typed after the slip rather than mending it. Its edit distance (three letters
    # added) hides it, and the registrable domain it makes (co.com, ml.com) is some other
    # owner's. After any other suffix (example.co.uj) a slip in a suffix of two labels
    # (example.co.uk) is likelier. "gmail.comcom": typed again without the dot.
    if typed.name == meant.name and typed.suffix == meant.suffix * 2:
        detail = f".{meant.suffix} typed twice, without the dot between"
        cost = COST_MERGED_SUFFIX + COST_DOT_DROPPED
        return Explanation((Edit(Slip.MERGED_SUFFIX, detail, cost),), cost)
    if typed.suffix != meant.suffix and typed.suffix not in _HABITUAL_SUFFIXES:
        return None
    head, _, slipped = typed.name.rpartition(".")
    confusion = SUFFIX_CONFUSIONS.get((meant.suffix, slipped))
    if confusion is None or head != meant.name:
        return None
    edits = (
        _suffix_slip(meant.suffix, slipped, confusion),
        Edit(Slip.MERGED_SUFFIX, f"then .{typed.suffix} typed after it", COST_MERGED_SUFFIX),
    )
    return Explanation(edits, confusion + COST_MERGED_SUFFIX)


def explain_host(host: str, meant: Domain, budget: float = math.inf) -> Explanation | None:
    """Explain a bare host name (no dot in it) as ``meant`` with its dots left out
    (``gmailcom``, ``usafmil``) or its suffix left off (``gmail``), with or without a slip
    in the name as well (``gmial``); ``None`` when no explanation costs ``budget`` nats or
    less. The cost is ``-ln P(host | meant)``, as :func:`explain` gives for a domain."""
    if host == meant.unicode.replace(".", ""):
        dots = meant.unicode.count(".")
        detail = "the dot left out" if dots == 1 else f"{dots} dots left out"
        cost = COST_DOT_DROPPED * dots
        return Explanation((Edit(Slip.DOT, detail, cost),), cost)
    cut = Edit(Slip.SUFFIX, f".{meant.suffix} left off", _cut_cost(meant.suffix))
    if host == meant.name:
        return Explanation((cut,), cut.cost)
    in_name = _align(host, meant.name, len(meant.name), budget - cut.cost)
    if in_name is None:
        return None
    return Explanation((*in_name.edits, cut), in_name.cost + cut.cost)


def _cut_short(meant: str, typed: str) -> bool:
    # Two letters or more missing: one letter left out is an omission as it stands.
    return len(typed) < len(meant) - 1 and meant.startswith(typed) and not is_real_suffix(typed)


def _cut_cost(meant: str) -> float:
    """What cutting the suffix ``meant`` short, or leaving it off, costs."""
    if meant in _HABITUAL_SUFFIXES:
        return COST_SUFFIX_CUT_SHORT
    return COST_SUFFIX_CUT_SHORT + COST_MERGED_UNUSUAL_SUFFIX


def _suffix_slip(meant: str, typed: str, cost: float) -> Edit:
    return Edit(Slip.SUFFIX, f".{meant} typed as .{typed}", cost)


def _is_bitflip(a: str, b: str) -> bool:
    """Whether ``b`` is ``a`` with one bit flipped, both characters a host name can hold:
    a flip out of ASCII (a to á, 0x61 to 0xe1) leaves no name DNS would look up."""
    flipped = ord(a) ^ ord(b)
    return flipped & (flipped - 1) == 0 and (a + b).isascii()


# The cheapest operation _align can charge: a bound that lets it skip hopeless alignments.
MIN_EDIT_COST = min(
    COST_OMISSION_DOUBLE, COST_DOUBLING, COST_DOT_DROPPED, COST_HYPHEN, COST_ASCII_HOMOGLYPH
)
_MATCH, _SUB, _OMIT, _EXTRA, _SWAP, _WIDE, _NARROW, _SWAP_OMIT, _SWAP_EXTRA = range(9)
# A two-character look-alike (rn for m) stands for one letter: two edits of the plain
# distance for the price of one look-alike, which the distance bound must allow for.
_LOOKALIKE_DISCOUNT = 2 * MIN_EDIT_COST - COST_ASCII_HOMOGLYPH


def _wide_at(text: str, lo: int, length: int) -> dict[int, str]:
    """Where a two-character look-alike ends in ``text[lo:lo + length]``: position (1-based,
    as the alignment counts) -> the letter it passes for."""
    return {
        k: letter
        for k in range(2, length + 1)
        for letter, wide in WIDE_LOOKALIKES.items()
        if text[lo + k - 2 : lo + k] == wide
    }


def _lookalike_room(meant: str, typed: str) -> float:
    """The most the two-character look-alikes in either text can take off the bound."""
    found = sum(text.count(wide) for wide in WIDE_LOOKALIKES.values() for text in (meant, typed))
    return _LOOKALIKE_DISCOUNT * found


def _align(typed: str, meant: str, suffix_start: int, budget: float) -> Explanation | None:
    """The cheapest alignment of ``meant`` into ``typed`` under the operation costs.

    A weighted Damerau distance, with costs that depend on the letters and their
    neighbours, and the edits read back from it. Besides the swap of two neighbours, a swap
    with a letter left out or added between them (``dexteyr`` for ``dexterny``, ``smr3at``
    for ``smart``): two slips, which an alignment of neighbours alone reads as three.
    Only the part between the common prefix and the common suffix is aligned (costs still
    see the neighbours outside it). ``None`` when every alignment costs more than ``budget``.
    """
    bound = DamerauLevenshtein.distance(meant, typed) * MIN_EDIT_COST
    if bound > budget and bound - _lookalike_room(meant, typed) > budget:
        return None
    shorter = min(len(meant), len(typed))
    lo = 0
    while lo < shorter and meant[lo] == typed[lo]:
        lo += 1
    tail = 0
    while tail < shorter - lo and meant[-1 - tail] == typed[-1 - tail]:
        tail += 1
    rows, cols = len(meant) - lo - tail, len(typed) - lo - tail
    omit = [_omission_cost(meant, lo + i) for i in range(rows)]
    extra = [_insertion_cost(typed, lo + j) for j in range(cols)]
    # The cost of a letter added beside the same letter when it doubles none (_doubled).
    plain = [
        _insertion_cost(typed, lo + j, doubled=False) if added == COST_DOUBLING else added
        for j, added in enumerate(extra)
    ]
    # cost[i][j]: meant[lo:lo+i] typed as typed[lo:lo+j]; move[i][j]: its last operation.
    cost = [[0.0] * (cols + 1) for _ in range(rows + 1)]
    move = [[_MATCH] * (cols + 1) for _ in range(rows + 1)]
    for i in range(1, rows + 1):
        cost[i][0] = cost[i - 1][0] + omit[i - 1]
        move[i][0] = _OMIT
    for j in range(1, cols + 1):
        added = extra[j - 1]
        if added == COST_DOUBLING and not _doubled(typed, lo + j - 1, meant, lo):
            added = plain[j - 1]
        cost[0][j] = cost[0][j - 1] + added
        move[0][j] = _EXTRA
    # Two-character look-alikes (rn, cl, vv) in each text: usually none, and then no check.
    typed_wide = _wide_at(typed, lo, cols)
    meant_wide = _wide_at(meant, lo, rows)
    for i in range(1, rows + 1):
        was = meant[lo + i - 1]
        above, row = cost[i - 1], cost[i]
        gone = omit[i - 1]
        narrow = meant_wide.get(i)  # meant "rn" (ending here) may be typed as one "m"
        for j in range(1, cols + 1):
            now = typed[lo + j - 1]
            if was == now:
                best, how = above[j - 1], _MATCH
            else:
                best, how = above[j - 1] + _substitution_cost(was, now), _SUB
            if above[j] + gone < best:
                best, how = above[j] + gone, _OMIT
            added = extra[j - 1]
            if added == COST_DOUBLING and not _doubled(typed, lo + j - 1, meant, lo + i):
                added = plain[j - 1]
            if row[j - 1] + added < best:
                best, how = row[j - 1] + added, _EXTRA
            if (
                i > 1
                and j > 1
                and was != now
                and was == typed[lo + j - 2]
                and meant[lo + i - 2] == now
                and cost[i - 2][j - 2] + _swap_cost(meant[lo + i - 2 : lo + i]) < best
            ):
                best, how = cost[i - 2][j - 2] + _swap_cost(meant[lo + i - 2 : lo + i]), _SWAP
            if was != now and i > 1 and j > 1:
                # A swap around a letter: "a x b" typed as "b a" (the x left out), or "a b"
                # typed as "b x a" (an x added).
                if i > 2 and now == meant[lo + i - 3] and was == typed[lo + j - 2]:
                    inside = cost[i - 3][j - 2] + _swap_cost(now + was) + omit[i - 2]
                    if inside < best:
                        best, how = inside, _SWAP_OMIT
                if j > 2 and now == meant[lo + i - 2] and was == typed[lo + j - 3]:
                    inside = cost[i - 2][j - 3] + _swap_cost(now + was) + extra[j - 2]
                    if inside < best:
                        best, how = inside, _SWAP_EXTRA
            if (
                typed_wide
                and typed_wide.get(j) == was
                and cost[i - 1][j - 2] + COST_ASCII_HOMOGLYPH < best
            ):
                best, how = cost[i - 1][j - 2] + COST_ASCII_HOMOGLYPH, _WIDE
            if narrow == now and cost[i - 2][j - 1] + COST_ASCII_HOMOGLYPH < best:
                best, how = cost[i - 2][j - 1] + COST_ASCII_HOMOGLYPH, _NARROW
            row[j] = best
            move[i][j] = how
        # Every way on passes through this row, the one above or (a swap around a letter
        # left out) the one above that.
        if min(row) > budget and min(above) > budget and (i < 2 or min(cost[i - 2]) > budget):
            return None
    total = cost[rows][cols]
    if total > budget:
        return None
    return Explanation(_edits(typed, meant, suffix_start, move, lo), total)


def _edits(
    typed: str, meant: str, suffix_start: int, move: list[list[int]], lo: int
) -> tuple[Edit, ...]:
    """Read the edits back from the alignment's moves, in reading order."""
    edits: list[Edit] = []
    i, j = len(move) - 1, len(move[0]) - 1
    while i or j:
        how = move[i][j]
        if how == _MATCH:
            i, j = i - 1, j - 1
        elif how == _SUB:
            i, j = i - 1, j - 1
            edits.append(_classify("replace", lo + i, lo + j, meant, typed, suffix_start))
        elif how == _OMIT:
            i -= 1
            edits.append(_classify("delete", lo + i, lo + j, meant, typed, suffix_start))
        elif how == _EXTRA:
            j -= 1
            edits.append(_classify("insert", lo + i, lo + j, meant, typed, suffix_start))
        elif how == _WIDE:
            i, j = i - 1, j - 2
            edits.append(_lookalike(typed[lo + j : lo + j + 2], meant[lo + i]))
        elif how == _NARROW:
            i, j = i - 2, j - 1
            edits.append(_lookalike(typed[lo + j], meant[lo + i : lo + i + 2]))
        elif how == _SWAP_OMIT:  # reversed below: the swap reads first
            i, j = i - 3, j - 2
            edits.append(_classify("delete", lo + i + 1, lo + j, meant, typed, suffix_start))
            edits.append(_transposition(meant[lo + i] + meant[lo + i + 2]))
        elif how == _SWAP_EXTRA:
            i, j = i - 2, j - 3
            edits.append(_classify("insert", lo + i + 1, lo + j + 1, meant, typed, suffix_start))
            edits.append(_transposition(meant[lo + i : lo + i + 2]))
        else:
            i, j = i - 2, j - 2
            edits.append(_transposition(meant[lo + i : lo + i + 2]))
    edits.reverse()
    return tuple(edits)


def _omission_cost(meant: str, i: int) -> float:
    ch = meant[i]
    if ch == ".":
        return COST_DOT_DROPPED
    if ch == "-":
        return COST_HYPHEN
    if not ch.isascii() and unicodedata.combining(ch):
        return COST_ACCENT  # a mark with no letter of its own: an accent left off
    if (i and meant[i - 1] == ch) or meant[i + 1 : i + 2] == ch:
        return COST_OMISSION_DOUBLE
    return COST_OMISSION


def _doubled(typed: str, j: int, meant: str, i: int) -> bool:
    """Whether ``typed[j]``, added where ``meant[:i]`` has been typed, is a letter typed
    twice: the key just pressed again (a sticky key), or the next meant letter typed early.
    Beside the same letter that was itself added, it is one more key: both of the "pp" in
    "googleappmail" (for "googlemail") were once counted as doublings."""
    ch = typed[j]
    return (j > 0 and typed[j - 1] == ch) or (typed[j + 1 : j + 2] == ch == meant[i : i + 1])


def _insertion_cost(typed: str, j: int, doubled: bool = True) -> float:
    """The cost of ``typed[j]`` added; ``doubled=False`` when it doubles no letter, though
    the same letter stands beside it (see :func:`_doubled`)."""
    ch = typed[j]
    if ch == ".":
        return COST_DOT_ADDED
    if ch == "-":
        return COST_HYPHEN
    if not ch.isascii() and unicodedata.combining(ch):
        return COST_ACCENT  # a mark that no letter holds precomposed: an accent added
    before, after = typed[j - 1 : j], typed[j + 1 : j + 2]
    if doubled and ch in (before, after):
        return COST_DOUBLING
    if adjacent(ch, before) or adjacent(ch, after):
        return COST_INSERTION_NEIGHBOUR
    return COST_INSERTION


def _swap_cost(pair: str) -> float:
    return COST_DOT_MOVED if "." in pair else COST_TRANSPOSITION


def _substitution_cost(was: str, now: str) -> float:
    return _substitution(was, now, False).cost


def _mark_name(mark: str) -> str:
    """A mark of its own by its name ("acute accent", "cedilla"): quoted, it would sit on
    the quote."""
    return unicodedata.name(mark, "accent").lower().removeprefix("combining ")


def _lookalike(typed: str, meant: str) -> Edit:
    return Edit(Slip.CONFUSABLE, f"{typed!r} looks like {meant!r}", COST_ASCII_HOMOGLYPH)


def _transposition(pair: str) -> Edit:
    if "." in pair:
        return Edit(Slip.DOT, "dot moved by one letter", COST_DOT_MOVED)
    return Edit(Slip.TRANSPOSITION, f"{pair!r} typed as {pair[::-1]!r}", COST_TRANSPOSITION)


def _classify(tag: str, i: int, j: int, meant: str, typed: str, suffix_start: int) -> Edit:
    """Describe one operation of an alignment; its cost is the one the alignment charged."""
    in_suffix = i >= suffix_start
    if tag == "delete":
        ch, cost = meant[i], _omission_cost(meant, i)
        if ch == ".":
            return Edit(Slip.DOT, "dot left out", cost)
        if ch == "-":
            return Edit(Slip.HYPHEN, "hyphen left out", cost)
        slip = Slip.SUFFIX if in_suffix else Slip.OMISSION
        if unicodedata.combining(ch):
            return Edit(slip, f"{_mark_name(ch)} left out", cost)
        if cost == COST_OMISSION_DOUBLE:
            return Edit(slip, f"double {ch!r} typed once", cost)
        return Edit(slip, f"{ch!r} left out", cost)
    if tag == "insert":
        ch, cost = typed[j], _insertion_cost(typed, j, doubled=_doubled(typed, j, meant, i))
        if ch == ".":
            return Edit(Slip.DOT, "extra dot", cost)
        if ch == "-":
            return Edit(Slip.HYPHEN, "extra hyphen", cost)
        slip = Slip.SUFFIX if in_suffix else Slip.INSERTION
        if unicodedata.combining(ch):
            return Edit(slip, f"extra {_mark_name(ch)}", cost)
        if cost == COST_DOUBLING:
            return Edit(Slip.SUFFIX if in_suffix else Slip.DOUBLING, f"{ch!r} doubled", cost)
        if cost == COST_INSERTION_NEIGHBOUR:
            return Edit(slip, f"extra {ch!r} from a neighbouring key", cost)
        return Edit(slip, f"extra {ch!r}", cost)
    return _substitution(meant[i], typed[j], in_suffix)


@lru_cache(maxsize=65_536)
def _substitution(was: str, now: str, in_suffix: bool) -> Edit:
    if "." in (was, now):
        return Edit(Slip.DOT, f"{now!r} for {was!r}", COST_DOT_ADDED)
    if "-" in (was, now):
        return Edit(Slip.HYPHEN, f"{now!r} for {was!r}", COST_HYPHEN)
    slip = Slip.SUFFIX if in_suffix else Slip.SUBSTITUTION
    if adjacent(was, now):
        slip = Slip.SUFFIX if in_suffix else Slip.KEYBOARD
        return Edit(slip, f"{now!r} for {was!r}", COST_KEYBOARD)
    if looks_like(now, was):
        return Edit(Slip.CONFUSABLE, f"{now!r} looks like {was!r}", COST_ASCII_HOMOGLYPH)
    if not (was.isascii() and now.isascii()) and unaccented(was) == unaccented(now):
        return Edit(slip, f"{now!r} for {was!r}, {mark_between(now, was)}", COST_ACCENT)
    if was in _VOWELS and now in _VOWELS:
        return Edit(slip, f"{now!r} for {was!r}, a vowel", COST_VOWEL)
    if _is_bitflip(was, now):  # in the suffix, a suffix slip like any other there
        bitflip = Slip.SUFFIX if in_suffix else Slip.BITFLIP
        return Edit(bitflip, f"{now!r} for {was!r}, one bit", COST_BITFLIP)
    return Edit(slip, f"{now!r} for {was!r}", COST_SUBSTITUTION)
