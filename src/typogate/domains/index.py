"""The candidate index: which intended domains could a typed domain be a slip for?

Built once over the protected and known domains; a query costs a few dozen dictionary
look-ups whatever the number of domains (never a scan). Keys:

* the deletion neighbourhood of the name left of the public suffix (SymSpell): up to two
  deletions for protected domains, one for the rest and for the typed name, so any one
  omission, insertion, substitution or transposition in the name, for protected domains
  also two omissions or one with a substitution (``yho.com``, ``yahu.com``), and any change
  of suffix, since the suffix is not part of the key (``army.ml``, ``gmail.con``, ``seibm.com``).
  A typed domain is looked up under every reading of where its suffix starts, so a slip in
  a two-label suffix (``gmail.co.um``) or an extra one (``example.com.com``) is found too;
* the name, and the whole domain, with dots and hyphens removed: the whole domain typed as
  a name (``armymil.com``, ``army-mil.com``) and hyphen slips (``1-und-1.de``);
* the UTS #39 skeleton of the whole domain, for look-alike characters (``аrmy.mil``, ``arny.mil``).
"""

from __future__ import annotations

from collections.abc import Iterable

from rapidfuzz import process
from rapidfuzz.distance import OSA

from typogate.domains.confusables import skeleton
from typogate.domains.names import Domain

# Deletions are taken from the first characters of a name only (SymSpell's prefix length):
# a slip further right leaves the prefix intact, and the key count stops growing with length.
PREFIX = 7


_TWO_SLIPS_MIN = 5
# Fewer candidates than this are cheaper to score one by one than to filter in a batch.
_BATCH_FILTER_FROM = 6


def _deletions(name: str, depth: int) -> set[str]:
    """The name's prefix and every string with up to ``depth`` (1 or 2) characters removed."""
    name = name[:PREFIX]
    keys = {name[:cut] + name[cut + 1 :] for cut in range(len(name))}
    # Two slips in a short name make another real name, not a typo worth a key: and the
    # one- and two-letter keys would each file hundreds of domains.
    if depth > 1 and len(name) >= _TWO_SLIPS_MIN:
        for shorter in list(keys):
            keys.update(shorter[:cut] + shorter[cut + 1 :] for cut in range(len(shorter)))
    keys.add(name)
    return keys


def _readings(typed: Domain) -> list[str]:
    """Every way to read the name of ``typed``: cut before each of its suffix labels."""
    names = [typed.name]
    head, _, _ = typed.name.rpartition(".")
    if head:
        names.append(head)  # "gmail.co" of gmail.co.um: the "co" belonged to the suffix
    labels = typed.suffix.split(".")
    names.extend(f"{typed.name}.{'.'.join(labels[:cut])}" for cut in range(1, len(labels)))
    return names


def _flat(text: str) -> str:
    return text.replace(".", "").replace("-", "")


def _keys(domain: Domain, depth: int) -> set[str]:
    """Every key ``domain`` is filed under; the prefixes keep the three kinds apart."""
    keys = _deletions(domain.name, depth)
    flat_name = _flat(domain.name)
    if flat_name != domain.name:  # a plain name is found by its deletion keys already
        keys.add(_FLAT + flat_name)
    keys.add(_FLAT + _flat(domain.unicode))
    keys.add(
        _SKELETON + _skeleton_uncached(domain.unicode)
    )  # indexed once: keep it out of the cache
    return keys


_FLAT, _SKELETON = "\x00", "\x01"  # never in a domain name
_skeleton_uncached = skeleton.__wrapped__


class CandidateIndex:
    """Candidate intended domains for a typed one, from a fixed set of real domains.

    Keys are stored as their hashes: a colliding key only adds a candidate, which the error
    model then scores and drops, and an int costs half the memory of the string.
    """

    def __init__(self, domains: Iterable[Domain] = (), protected: Iterable[Domain] = ()) -> None:
        self.domains: list[Domain] = []
        self._ids: dict[str, int] = {}
        self._postings: dict[int, int | list[int]] = {}
        for domain in protected:
            self.add(domain, protected=True)
        for domain in domains:
            self.add(domain)

    def add(self, domain: Domain, *, protected: bool = False) -> bool:
        """Index one more domain (two-deletion keys when ``protected``); False if present."""
        if domain.ascii in self._ids:
            return False
        ident = self._ids[domain.ascii] = len(self.domains)
        self.domains.append(domain)
        postings = self._postings
        get = postings.get
        # Inlined on purpose: this loop runs for every key of every domain at start-up.
        for key in map(hash, _keys(domain, 2 if protected else 1)):
            held = get(key)
            if held is None:
                postings[key] = ident
            elif held.__class__ is int:
                postings[key] = [held, ident]  # type: ignore[list-item]
            else:
                held.append(ident)  # type: ignore[union-attr]
        return True

    def __len__(self) -> int:
        return len(self.domains)

    def __contains__(self, domain: Domain) -> bool:
        return domain.ascii in self._ids

    def candidates(self, typed: Domain, max_edits: int | None = None) -> list[Domain]:
        """Domains of the index that ``typed`` may be a slip for (never ``typed`` itself).

        With ``max_edits``, candidates found through the deletion keys are kept only when
        their whole domain is at most that many edits away (checked in C, in one batch: a
        common prefix such as ``townof`` can file a hundred domains under one key).
        Candidates found through the dotless and skeleton keys are always kept.
        """
        name = typed.name
        flat_name = _flat(name)
        # The keys of _deletions(name, 1) as a list: a repeated key only finds its ids again.
        prefix = name[:PREFIX]
        near = [prefix[:cut] + prefix[cut + 1 :] for cut in range(len(prefix))]
        near += (prefix, flat_name[:PREFIX])  # "1-und-1" for the plain name "1und1"
        # Uncached: a novel domain's skeleton is asked for once (its verdict is cached).
        special = [_FLAT + flat_name, _SKELETON + _skeleton_uncached(typed.unicode)]
        if "." in name or "." in typed.suffix:
            for reading in _readings(typed)[1:]:
                near += _deletions(reading, 1)
                special.append(_FLAT + _flat(reading))
        found = self._look_up(near)
        if max_edits is not None and len(found) > _BATCH_FILTER_FROM:
            ids = list(found)
            kept = process.extract(
                typed.unicode,
                [self.domains[ident].unicode for ident in ids],
                scorer=OSA.distance,
                score_cutoff=max_edits,
                limit=None,
            )
            found = {ids[position] for _, _, position in kept}
        found |= self._look_up(special)
        if not found:
            return []
        found.discard(self._ids.get(typed.ascii, -1))
        domains = self.domains
        return [domains[ident] for ident in found]

    def _look_up(self, keys: list[str]) -> set[int]:
        # Most keys of a typed name are filed nowhere: drop the misses in one comprehension.
        found: set[int] = set()
        for held in [held for held in map(self._postings.get, map(hash, keys)) if held is not None]:
            if held.__class__ is int:
                found.add(held)  # type: ignore[arg-type]
            else:
                found.update(held)  # type: ignore[arg-type]
        return found
