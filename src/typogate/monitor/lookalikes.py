"""Which look-alikes of a protected domain are most likely typed by someone who meant it.

The ranking is typogate's own error model (``typogate.domains.channel``): the cost that
``explain`` gives a look-alike is ``-ln P(typed | meant)``, so ``exp(-cost)`` is the
probability that a sender who meant the protected domain types the look-alike. The
verdicts of the gateway and this ranking are the same model.

Candidates are made by the slips the model knows, then scored by it:

* one slip anywhere in the domain: a letter left out, added, replaced or swapped with its
  neighbour, a dot or hyphen dropped, added or moved (``seibm.com`` for ``se.ibm.com``);
* the suffix swapped for every real public suffix of the ICANN section of the Public
  Suffix List (``army.ml``, ``army.mi``) and the whole domain typed as a name under a
  habitual suffix (``armymil.com``, ``army-mil.com``);
* look-alike letters, ASCII (``rn`` for ``m``) and Unicode (a Cyrillic ``а``), as one
  letter or as a whole label, kept when IDNA 2008 allows them;
* a second slip on top of a suffix confusion (``amry.ml``), from the neighbouring keys
  only. Two slips after any other first one (6 nats and more, the tail of the cut) are
  left out: their thousands per domain would cost more to score than the rest of the run.

Only look-alikes under a real public suffix are kept: under any other nothing can be
registered, so mail to it bounces and never leaks. A domain that is itself protected or
known is never a look-alike (``fcc.gov`` and ``ftc.gov`` are both real).

The list is cut by probability mass, not by count: the most likely look-alikes are kept
until they hold ``coverage`` of the probability of every candidate within ``budget`` nats.
A short name with many cheap slips keeps more look-alikes than a long rare one.
"""

from __future__ import annotations

import math
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources

from rapidfuzz import process
from rapidfuzz.distance import OSA

from typogate.domains import (
    MIN_EDIT_COST,
    Domain,
    InvalidAddress,
    Slip,
    explain,
    parse_domain,
    readings,
    skeleton,
)
from typogate.domains.channel import COST_OTHER_REAL_SUFFIX, SUFFIX_CONFUSIONS
from typogate.domains.keyboard import NEIGHBOURS

# Letters a mail domain is typed with: what a slip can add or put in place of another.
_LETTERS = "abcdefghijklmnopqrstuvwxyz0123456789"
_TYPED = _LETTERS + "-."
# A slip this likely (a known suffix confusion: army.ml, gmail.co) gets a second one on top,
# from the neighbouring keys. Two slips after a costlier first one cost 6 nats and more, the
# tail of the mass cut, and scoring their thousands per domain would cost more than the
# rest of the run: they are left out.
_SECOND_SLIP_BELOW = 2.5
# The whole domain typed as a name under a habitual suffix (armymil.com, army-mil.com).
_MERGED_SUFFIXES = ("com", "net", "org")

DEFAULT_COVERAGE = 0.9
DEFAULT_BUDGET = 10.0


@dataclass(frozen=True, slots=True)
class LookAlike:
    """A domain a sender who meant ``intended`` may type, and how likely that is.

    ``domain`` is the Unicode form (what a person reads), ``ascii`` the A-label form (what
    DNS is asked). ``probability`` is ``exp(-cost)``; ``rank`` is 1 for the likeliest
    look-alike of ``intended``; ``slip`` the reason code of the model's explanation.
    """

    domain: str
    ascii: str
    intended: str
    probability: float
    rank: int
    slip: Slip


def look_alikes(
    meant: Domain,
    *,
    coverage: float = DEFAULT_COVERAGE,
    budget: float = DEFAULT_BUDGET,
    real: Container[str] = frozenset(),
) -> list[LookAlike]:
    """The look-alikes of ``meant``, likeliest first, cut at ``coverage`` of the mass.

    ``real`` holds the A-label forms of domains that are real (protected and known):
    they are never look-alikes. ``budget`` (nats) bounds the candidates scored at all.
    """
    if not 0.0 < coverage <= 1.0:
        raise ValueError("coverage is a share of the probability mass, above 0 and at most 1")
    scored: dict[str, tuple[float, Domain, Slip]] = {}
    seen: set[str] = set()

    def score(texts: Iterable[str]) -> list[str]:
        """Score the new candidates among ``texts``; the cheap ones are returned."""
        cheap = []
        top_level = _top_level_domains()
        for text in texts:
            # Under a suffix nobody can register under, mail bounces: it cannot leak. Every
            # real suffix ends in a real top-level domain: most such slips stop here, unparsed.
            if text in seen or text.rpartition(".")[2] not in top_level:
                continue
            seen.add(text)
            typed = _parse(text)
            if (
                typed is None
                or typed.ascii == meant.ascii
                or typed.ascii in real
                or typed.ascii in scored
                or not _real_suffix(typed.suffix)
            ):
                continue
            explanation = explain(typed, meant, budget)
            if explanation is None:
                continue
            if explanation.cost <= _SECOND_SLIP_BELOW:
                cheap.append(text)
            scored[typed.ascii] = (explanation.cost, typed, explanation.reason)
        return cheap

    for cheap in score(_one_slip(meant.unicode, _TYPED)):
        score(_neighbour_slip(cheap))
    score(_suffix_swaps(meant, budget))
    score(_merged(meant))
    score(_look_alike_letters(meant))
    ranked = sorted(scored.values(), key=lambda item: (item[0], item[1].ascii))
    total = sum(math.exp(-cost) for cost, _, _ in ranked)
    kept: list[LookAlike] = []
    held = 0.0
    for cost, typed, slip in ranked:
        if held >= coverage * total:
            break
        probability = math.exp(-cost)
        held += probability
        kept.append(
            LookAlike(typed.unicode, typed.ascii, meant.unicode, probability, len(kept) + 1, slip)
        )
    return kept


def _parse(text: str) -> Domain | None:
    try:
        return parse_domain.__wrapped__(text)  # each candidate once: keep the cache for mail
    except InvalidAddress:
        return None


def _merged(meant: Domain) -> Iterator[str]:
    """The whole domain typed as a name (``armymil.com``, ``army-mil.com``, ``army.mil.com``)."""
    whole = meant.unicode
    for suffix in (*_MERGED_SUFFIXES, meant.suffix):
        for joined in (whole.replace(".", ""), whole.replace(".", "-"), whole):
            yield f"{joined}.{suffix}"


def _one_slip(text: str, alphabet: str) -> Iterator[str]:
    """Every string one omission, insertion, substitution or transposition away."""
    for at in range(len(text) + 1):
        head, tail = text[:at], text[at:]
        for letter in alphabet:
            yield head + letter + tail
        if tail:
            yield head + tail[1:]
            for letter in alphabet:
                if letter != tail[0]:
                    yield head + letter + tail[1:]
            if len(tail) > 1 and tail[0] != tail[1]:
                yield head + tail[1] + tail[0] + tail[2:]


def _neighbour_slip(text: str) -> Iterator[str]:
    """One more slip of the fingers: a letter left out, doubled, swapped, or a
    neighbouring key typed for it or next to it."""
    for at, letter in enumerate(text):
        head, tail = text[:at], text[at + 1 :]
        yield head + tail
        yield head + letter + letter + tail
        if tail:
            yield head + tail[0] + letter + tail[1:]
        for near in NEIGHBOURS.get(letter, ()):
            yield head + near + tail
            yield head + letter + near + tail


def _suffix_swaps(meant: Domain, budget: float) -> Iterator[str]:
    """The name under every real suffix that the model can take for a slip within budget.

    Another real suffix costs at least COST_OTHER_REAL_SUFFIX plus one cheapest edit per
    edit between the suffixes, unless the pair is a known confusion (mil -> ml): the rest
    of the list is left out before any scoring (in C, in one batch).
    """
    for (was, now), _ in SUFFIX_CONFUSIONS.items():
        if was == meant.suffix:
            yield f"{meant.name}.{now}"
    reach = int((budget - COST_OTHER_REAL_SUFFIX) // MIN_EDIT_COST)
    if reach < 1:
        return
    for suffix, _, _ in process.extract(
        meant.suffix, _public_suffixes(), scorer=OSA.distance, score_cutoff=reach, limit=None
    ):
        yield f"{meant.name}.{suffix}"


def _look_alike_letters(meant: Domain) -> Iterator[str]:
    """Look-alike letters in the name: one at a time (ASCII and Unicode), and a whole label
    in one look-alike script where every letter has a twin there."""
    name, suffix = meant.name, meant.suffix
    for letter, twins in _ascii_twins().items():
        start = name.find(letter)
        while start != -1:
            for twin in twins:
                yield f"{name[:start]}{twin}{name[start + len(letter) :]}.{suffix}"
            start = name.find(letter, start + 1)
    unicode_twins = _unicode_twins()
    for at, letter in enumerate(name):
        for twin in unicode_twins.get(letter, ""):
            yield f"{name[:at]}{twin}{name[at + 1 :]}.{suffix}"
    for script in _scripts():
        labels = []
        for label in name.split("."):
            swapped = "".join(script.get(letter, letter) for letter in label)
            labels.append(swapped if all(letter in script for letter in label) else label)
        yield f"{'.'.join(labels)}.{suffix}"


@cache
def _public_suffixes() -> list[str]:
    """Every suffix of the ICANN section of the Public Suffix List, in Unicode form
    (wildcard and exception rules left out: they name no one suffix)."""
    data = resources.files("publicsuffixlist").joinpath("public_suffix_list.dat").read_text("utf-8")
    section = data.split("===BEGIN ICANN DOMAINS===", 1)[1].split("===END ICANN DOMAINS===", 1)[0]
    suffixes = set()
    for line in section.splitlines():
        rule = line.strip()
        if rule and not rule.startswith(("//", "!", "*")):
            suffixes.add(rule.lower())
    return sorted(suffixes)


@cache
def _suffix_set() -> frozenset[str]:
    return frozenset(_public_suffixes())


@cache
def _top_level_domains() -> frozenset[str]:
    return frozenset(suffix for suffix in _public_suffixes() if "." not in suffix)


def _real_suffix(suffix: str) -> bool:
    return suffix in _suffix_set()


@cache
def _ascii_twins() -> dict[str, tuple[str, ...]]:
    """ASCII letters and the ASCII strings UTS #39 takes them for (``m`` and ``rn``), both
    ways round."""
    twins: dict[str, set[str]] = {}
    for letter in _LETTERS:
        prototype = skeleton(letter)
        if prototype != letter and all(ch in _LETTERS for ch in prototype):
            twins.setdefault(letter, set()).add(prototype)
            twins.setdefault(prototype, set()).add(letter)
    return {letter: tuple(sorted(found)) for letter, found in twins.items()}


# Scripts whose letters pass for Latin ones (UTS #39 confusables): Latin extensions,
# Greek, Cyrillic, Armenian. Code point ranges, so that no table is kept by hand.
_LOOK_ALIKE_BLOCKS = ((0x00C0, 0x0250), (0x0370, 0x0530), (0x0530, 0x0590))


@cache
def _unicode_twins() -> dict[str, str]:
    """ASCII letters and digits, and the lower-case letters of other scripts that share
    their UTS #39 skeleton (``а`` U+0430 for ``a``)."""
    twins: dict[str, list[str]] = {}
    for start, end in _LOOK_ALIKE_BLOCKS:
        for point in range(start, end):
            letter = chr(point)
            if letter.isalpha() and letter == letter.lower():
                for reading in readings(letter):
                    prototype = skeleton(reading)
                    if len(prototype) == 1 and prototype in _LETTERS:
                        twins.setdefault(prototype, []).append(letter)
    return {letter: "".join(found) for letter, found in twins.items()}


@cache
def _scripts() -> tuple[dict[str, str], ...]:
    """For each look-alike script, one twin per ASCII letter it has one for."""
    import unicodedata

    by_script: dict[str, dict[str, str]] = {}
    for letter, found in _unicode_twins().items():
        for twin in found:
            script = unicodedata.name(twin, "").split(" ", 1)[0]
            by_script.setdefault(script, {}).setdefault(letter, twin)
    return tuple(by_script[script] for script in sorted(by_script))
