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
  a name (``armymil.com``, ``army-mil.com``), hyphen slips (``1-und-1.de``), and a dot left
  out where a two-label suffix begins (``yahooco.jp``: a typed domain is looked up whole
  and flat too);
* the UTS #39 skeleton of the whole domain, for look-alike characters (``аrmy.mil``, ``arny.mil``);
* the deletion neighbourhood of the name with its ASCII look-alikes folded (``cl`` -> ``d``,
  ``rn`` -> ``m``), for a look-alike together with another slip (``clel.com``, ``arrny.ml``)
  and a look-alike in either direction (``doudflare.com`` for ``cloudflare.com``).

Besides the keys, a typed name that ends in a protected registrable domain's name is read as
that domain with a host label in front and its dot left out (``chndell.com``: ``chn.dell.com``
when ``dell.com`` is protected, the "doppelganger" of Godai et al.): that host is in no list,
so the index makes the candidate domain rather than finding it. Not in closed registries
(``model.closed_suffixes``: ``.gov``, ``.mil``): there a name is assigned under a naming
rule, and a state's prefix in front of an agency's name (``azdot.gov``, ``ncdoi.gov``) is
how real names are made, not how dots get lost. Nor for a protected name that ends other
listed names (``mail`` of ``mail.com`` ends ``gmail`` and ``hotmail``): a word that names
are made with, where ``uomail.com`` is another provider.
"""

from __future__ import annotations

import json
import sys
from array import array
from collections.abc import Hashable, Iterable
from typing import TypeVar

from typogate.domains.channel import within_edits
from typogate.domains.confusables import fold_lookalikes, readings, skeleton, unaccented
from typogate.domains.names import Domain, InvalidAddress, parse_domain

K = TypeVar("K", bound=Hashable)  # a key as filed: its text, or its hash in this process

# Deletions are taken from the first characters of a name only (SymSpell's prefix length):
# a slip further right leaves the prefix intact, and the key count stops growing with length.
PREFIX = 7


_TWO_SLIPS_MIN = 5
# Two slips that each add or change a letter are looked for only between names this long:
# in shorter ones two slips leave too little of the name, and another real name is likelier.
_TWO_SLIPS_APART = 7
# Fewer candidates than this are cheaper to score one by one than to filter in a batch.
_BATCH_FILTER_FROM = 6
# A protected name shorter than this is not looked for at the end of a typed name: a short
# name ends too many real names (``me.com`` in ``acme.com``, ``va.gov`` in ``fairfaxva.gov``).
_DOPPELGANGER_MIN = 3
# The host labels read in front of it: country and region codes (se, chn, aus), as in the
# doppelgangers found in the wild. A longer label makes a word of its own with the name
# (wrongmail.com is no host "wron" under gmail.com).
_DOPPELGANGER_HOST_MAX = 3


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


def _file(postings: dict[K, int | list[int]], keys: Iterable[K], ident: int) -> None:
    """File the domain ``ident`` under each of ``keys``: a key's first domain as its id,
    more as a list of ids (most keys file one domain, and an int costs less than a list)."""
    get = postings.get
    for key in keys:
        held = get(key)
        if held is None:
            postings[key] = ident
        elif held.__class__ is int:
            postings[key] = [held, ident]  # type: ignore[list-item]
        else:
            held.append(ident)  # type: ignore[union-attr]


def _by_hash(filed: dict[K, int | list[int]]) -> dict[int, int | list[int]]:
    """The same postings filed under the keys' hashes: two keys of one hash are one key
    (a colliding key only adds a candidate, which the error model drops)."""
    postings: dict[int, int | list[int]] = {}
    for key, held in filed.items():
        code = hash(key)
        was = postings.setdefault(code, held)
        if was is not held:  # a new list: the text's filing is left as it was
            postings[code] = list(dict.fromkeys([*_members(was), *_members(held)]))
    return postings


def _members(held: int | list[int]) -> list[int]:
    return [held] if held.__class__ is int else held  # type: ignore[list-item,return-value]


def _domain_line(domain: Domain) -> str:
    """A domain's parts, tab-separated, its Unicode form left out when it is its ASCII one."""
    ascii_form, unicode_form, *split = domain
    return "\t".join([ascii_form, "" if unicode_form == ascii_form else unicode_form, *split])


def _fields(line: str) -> list[str]:
    return line.split("\t")


def _integers(section: memoryview) -> array[int]:
    # Kept as machine integers: an int object of each would outlive its use in the heap.
    numbers = array("i")
    numbers.frombytes(section)
    return numbers


def _hashes(keys: str) -> list[int]:
    """The hashes (this process's) of the newline-separated keys, read a slice at a time:
    a string of every key at once would take twice the memory of the index for a moment,
    and leave its heap in holes."""
    hashes: list[int] = []
    start = 0
    while start <= len(keys):  # a last key may be empty: one-letter names have it
        end = keys.find("\n", start + 65536)
        end = len(keys) if end < 0 else end
        hashes += map(hash, keys[start:end].split("\n"))
        start = end + 1
    return hashes


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
    folded = fold_lookalikes(domain.name)
    if folded != domain.name:  # "cloudflare" is filed under "doudflare" too
        keys |= _deletions(folded, depth)
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

    def __init__(
        self,
        domains: Iterable[Domain] = (),
        protected: Iterable[Domain] = (),
        closed: Iterable[str] = (),
        *,
        keep_keys: bool = False,
    ) -> None:
        """Index ``protected`` and ``domains``; ``closed`` names the suffixes of closed
        registries (``gov``), under which no doppelganger is read. With ``keep_keys``, the
        keys' text is kept for :meth:`to_bytes` (a build that will be kept in a file)."""
        self.domains: list[Domain] = []
        self._closed = tuple(closed)
        self._ids: dict[str, int] = {}
        # Protected registrable domains by their Unicode form, for the doppelganger reading,
        # their names, and those of the names that end another listed name (mail: gmail).
        self._registrable: set[str] = set()
        self._parent_names: set[str] = set()
        self._compounds: set[str] = set()
        self._built = False
        self._postings: dict[int, int | list[int]] = {}
        # Filed by their text, then by hash: to_bytes writes the text, which a build
        # that files hashes alone would have to make again (as long as the build took).
        self._keyed: dict[str, int | list[int]] | None = {} if keep_keys else None
        for domain in protected:
            self.add(domain, protected=True)
        self._protected_count = len(self.domains)  # they come first: to_bytes files them so
        for domain in domains:
            self.add(domain)
        if self._keyed is not None:
            self._postings = _by_hash(self._keyed)
        if self._parent_names:  # now that every protected name is known
            for domain in self.domains:
                self._note_compound(domain)
        self._built = True

    def to_bytes(self) -> bytes:
        """The index as built, for :meth:`from_bytes` in a later process of this machine
        (native byte order): its domains and its keys as text, the ids filed under each key
        as machine integers. Once, on an index built with ``keep_keys``, before any
        :meth:`add` or :meth:`discard`: the keys' text is let go of as it is written, or as
        the index changes. Raises ``ValueError`` otherwise."""
        filed, self._keyed = self._keyed, None
        if filed is None:
            raise ValueError("the index kept no keys to write (keep_keys, and once)")
        protected_count = self._protected_count
        # A key filing one domain holds its id; one filing several, -1, and its place in
        # the key list is in ``grouped``, its ids in ``members`` up to its end in ``ends``.
        ids, grouped, ends, members = array("i"), array("i"), array("i", [0]), array("i")
        for position, held in enumerate(filed.values()):
            if held.__class__ is int:
                ids.append(held)  # type: ignore[arg-type]
            else:
                ids.append(-1)
                grouped.append(position)
                members.extend(held)  # type: ignore[arg-type]
                ends.append(len(members))
        sections = [
            "\n".join(map(_domain_line, self.domains)).encode(),
            "\n".join(filed).encode(),
            *(numbers.tobytes() for numbers in (ids, grouped, ends, members)),
        ]
        header = json.dumps(
            {
                "protected": protected_count,
                "closed": list(self._closed),
                "registrable": sorted(self._registrable),
                "parent_names": sorted(self._parent_names),
                "compounds": sorted(self._compounds),
                "sections": [len(section) for section in sections],
                "byteorder": sys.byteorder,
            }
        ).encode()
        return b"".join([b"%012d\n" % len(header), header, *sections])

    @classmethod
    def from_bytes(cls, data: bytes | memoryview) -> CandidateIndex:
        """The index :meth:`to_bytes` gave, as it was built. Raises ``ValueError`` for bytes
        not laid out as it lays them out (cut short, another format). That they are the
        bytes it gave, unchanged, and for the same lists, code and libraries, is for the
        caller to know (``policy/index_cache.py``: a checksum and a key). Read in place: a
        memoryview of a file's bytes is not copied."""
        view = memoryview(data)
        try:
            size = int(bytes(view[:12]))
            header = json.loads(bytes(view[13 : 13 + size]))
            if header["byteorder"] != sys.byteorder:
                raise ValueError("written on a machine of another byte order")
            sections, start = [], 13 + size
            for length in header["sections"]:
                sections.append(view[start : start + length])
                start += length
            if start != len(view):
                raise ValueError("its sections do not add up to its length")
            domains_text, keys_text, *numbers = sections
            lines = str(domains_text, "utf-8").split("\n")
            domains = [
                Domain._make((ascii_form, unicode_form or ascii_form, *split))
                for ascii_form, unicode_form, *split in map(_fields, lines)
            ]
            # One int object per domain, as a build files it under each of its keys.
            numbers_of = list(range(len(domains)))
            ident = numbers_of.__getitem__
            ids, grouped, ends, members = map(_integers, numbers)
            filed: list[int | list[int]] = list(map(ident, ids))
            for position, start, end in zip(grouped, ends[:-1], ends[1:], strict=True):
                filed[position] = list(map(ident, members[start:end]))
            hashes = _hashes(str(keys_text, "utf-8"))
            postings = dict(zip(hashes, filed, strict=True))
            index = cls.__new__(cls)
            index.domains = domains
            index._closed = tuple(header["closed"])
            index._ids = dict(zip([domain.ascii for domain in domains], numbers_of, strict=True))
            index._registrable = set(header["registrable"])
            index._parent_names = set(header["parent_names"])
            index._compounds = set(header["compounds"])
            index._protected_count = header["protected"]
        except (KeyError, TypeError, IndexError, UnicodeDecodeError) as error:
            raise ValueError(f"not an index: {error!r}") from None
        # Two keys of one hash (this process's): the build files both under it, a dict
        # would keep one. Too rare to file them here; the caller builds the index instead.
        if len(postings) < len(hashes) or len(index._ids) < len(domains):
            raise ValueError("two of its keys or domains are one in this process")
        index._postings = postings
        index._keyed = None
        index._built = True
        return index

    def add(self, domain: Domain, *, protected: bool = False) -> bool:
        """Index one more domain (two-deletion keys when ``protected``); False if present."""
        if domain.ascii in self._ids:
            return False
        ident = self._ids[domain.ascii] = len(self.domains)
        self.domains.append(domain)
        if (
            protected
            and "." not in domain.name
            and len(domain.name) >= _DOPPELGANGER_MIN
            and not any(
                domain.suffix == name or domain.suffix.endswith("." + name) for name in self._closed
            )
        ):
            self._registrable.add(domain.unicode)
            self._parent_names.add(domain.name)
        if self._built and self._parent_names:
            self._note_compound(domain)
        keys = _keys(domain, 2 if protected else 1)
        if self._keyed is not None and not self._built:
            _file(self._keyed, keys, ident)
        else:
            self._keyed = None  # what it kept no longer says what is filed
            _file(self._postings, map(hash, keys), ident)
        return True

    def discard(self, domain: Domain) -> bool:
        """Take back a learned (not protected) domain: it is no candidate from now on, and
        no longer in the index. Its slot stays, unused, until the index is built again (a
        rare event: an admin taking back a rule). False if it was not indexed."""
        ident = self._ids.pop(domain.ascii, None)
        if ident is None:
            return False
        self._keyed = None  # what it kept no longer says what is filed
        postings = self._postings
        for key in map(hash, _keys(domain, 1)):
            held = postings.get(key)
            if held == ident:
                del postings[key]
            elif held.__class__ is list and ident in held:  # type: ignore[operator]
                held.remove(ident)  # type: ignore[union-attr]
        return True

    def _note_compound(self, domain: Domain) -> None:
        """Note the protected names that end ``domain``'s last name label (``gmail``)."""
        label = domain.name.rpartition(".")[2]
        for cut in range(1, len(label) - _DOPPELGANGER_MIN + 1):
            if label[cut:] in self._parent_names:
                self._compounds.add(label[cut:])

    @property
    def protected_domains(self) -> list[Domain]:
        """The protected domains it was built with (each once)."""
        return self.domains[: self._protected_count]

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, domain: Domain) -> bool:
        return self.holds(domain.ascii)

    def holds(self, ascii_form: str) -> bool:
        """Whether the domain whose A-label form, in lower case, is ``ascii_form`` is
        indexed: asked of text before it is parsed, which costs far more."""
        return ascii_form in self._ids

    def candidates(self, typed: Domain, max_edits: int | None = None) -> list[Domain]:
        """Domains of the index that ``typed`` may be a slip for (never ``typed`` itself).

        With ``max_edits``, candidates found through the deletion keys are kept only when
        their whole domain is at most that many edits away (checked in C, in one batch: a
        common prefix such as ``townof`` can file a hundred domains under one key).
        Candidates found through the dotless and skeleton keys are always kept, and so are
        the doppelganger readings (``chn.dell.com`` for ``chndell.com``), which are made,
        not found: the index does not hold them.
        """
        name = typed.name
        flat_name = _flat(name)
        # The keys of _deletions(name, 1) as a list: a repeated key only finds its ids again.
        prefix = name[:PREFIX]
        near = [prefix[:cut] + prefix[cut + 1 :] for cut in range(len(prefix))]
        near.append(prefix)
        near.append(flat_name[:PREFIX])  # "1-und-1" for the plain name "1und1"
        folded = fold_lookalikes(name)
        if folded != name:
            near += _deletions(folded, 1)
        # Uncached: a novel domain's skeleton is asked for once (its verdict is cached).
        # The whole domain flattened too: a dot left out where the suffix begins finds a
        # name under a two-label suffix (itmoedu.pl for itmo.edu.pl, bbcco.uk for bbc.co.uk).
        special = [
            _FLAT + flat_name,
            _FLAT + _flat(typed.unicode),
            *(_SKELETON + _skeleton_uncached(reading) for reading in readings(typed.unicode)),
        ]
        if not name.isascii() and (plain := unaccented.__wrapped__(typed.unicode)) != typed.unicode:
            # Its accents taken off: wéb.de and gmä́il.com meet web.de and gmail.com, which
            # the error model then prices one accent at a time.
            special.append(_SKELETON + _skeleton_uncached(plain))
        if "." in name or "." in typed.suffix:
            for reading in _readings(typed)[1:]:
                near += _deletions(reading, 1)
                special.append(_FLAT + _flat(reading))
        found = self._look_up(near)
        if len(name) >= _TWO_SLIPS_APART:
            found |= self._two_slips_apart(name, prefix)
        if max_edits is not None and len(found) > _BATCH_FILTER_FROM:
            ids = list(found)
            names = [self.domains[ident].unicode for ident in ids]
            found = {ids[position] for position, _ in within_edits(typed.unicode, names, max_edits)}
        found |= self._look_up(special)
        made = self._doppelgangers(typed) if self._registrable else []
        for domain in made:
            if domain.ascii in self._ids:  # se.ibm.com is in a list: found as itself
                found.add(self._ids[domain.ascii])
        if not found and not made:
            return []
        found.discard(self._ids.get(typed.ascii, -1))
        domains = self.domains
        return [domains[ident] for ident in found] + [
            domain for domain in made if domain.ascii not in self._ids
        ]

    def spelled_as_host(self, host: str) -> list[Domain]:
        """Domains of the index that a bare host name (no dot in it) may spell, as the
        error model's ``explain_host`` reads it: filed under the host as their flattened
        form (``gmailcom``), or under its first letters as their name's, one slip apart at
        most (``gmail``, ``gmial``)."""
        prefix = host[:PREFIX]
        keys = [prefix[:cut] + prefix[cut + 1 :] for cut in range(len(prefix))]
        keys += [prefix, _FLAT + host]
        domains = self.domains
        return [domains[ident] for ident in self._look_up(keys)]

    def _two_slips_apart(self, name: str, prefix: str) -> set[int]:
        """Names two slips away that each add or change a letter (``socciaosecurity`` for
        ``socialsecurity``: a doubled c and an o for an l), found by taking two letters off
        the typed prefix as well. Only those with the same first letter: people rarely get a
        name's first letter wrong, and a changed start (``azcourts`` against ``uscourts``,
        ``okbenefits`` against ``benefits``) is far more often another real name. Two slips
        of the whole name, too: the keys see its first letters only."""
        keys = [
            prefix[:first] + prefix[first + 1 : second] + prefix[second + 1 :]
            for first in range(1, len(prefix))
            for second in range(first + 1, len(prefix))
        ]
        domains = self.domains
        found = [
            ident
            for ident in self._look_up(keys)
            if (meant := domains[ident].name)[0] == name[0] and len(meant) >= _TWO_SLIPS_APART
        ]
        names = [domains[ident].name for ident in found]
        return {found[position] for position, _ in within_edits(name, names, 2)}  # not three

    def _doppelgangers(self, typed: Domain) -> list[Domain]:
        """``typed`` read as a host label in front of a protected registrable domain, with
        the dot between them left out: ``chndell.com`` -> ``chn.dell.com``."""
        head, _, label = typed.name.rpartition(".")
        made = []
        for cut in range(1, min(_DOPPELGANGER_HOST_MAX, len(label) - _DOPPELGANGER_MIN) + 1):
            parent = f"{label[cut:]}.{typed.suffix}"
            if (
                parent in self._registrable
                and label[cut:] not in self._compounds
                and label[:cut].isalpha()  # hosts are named (chn, emea), not numbered
            ):
                host = f"{head}.{label[:cut]}" if head else label[:cut]
                try:
                    made.append(parse_domain(f"{host}.{parent}"))
                except InvalidAddress:
                    continue  # a label the typed name allowed but a host cannot have
        return made

    def _look_up(self, keys: list[str]) -> set[int]:
        # Most keys of a typed name are filed nowhere: drop the misses in one comprehension.
        found: set[int] = set()
        for held in [held for held in map(self._postings.get, map(hash, keys)) if held is not None]:
            if held.__class__ is int:
                found.add(held)  # type: ignore[arg-type]
            else:
                found.update(held)  # type: ignore[arg-type]
        return found
