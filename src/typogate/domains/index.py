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

from typogate.domains.confusables import skeleton
from typogate.domains.names import Domain

# A key maps to one domain id (the common case, saving a list per key) or to a list of ids.
_Postings = dict[str, "int | list[int]"]


def _deletions(name: str, depth: int) -> set[str]:
    """The name itself and every string with up to ``depth`` (1 or 2) characters removed."""
    once = {name[:cut] + name[cut + 1 :] for cut in range(len(name))}
    keys = {name, *once}
    if depth > 1:
        for shorter in once:
            keys.update(shorter[:cut] + shorter[cut + 1 :] for cut in range(len(shorter)))
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


def _post(table: _Postings, key: str, ident: int) -> None:
    held = table.get(key)
    if held is None:
        table[key] = ident
    elif isinstance(held, int):
        if held != ident:
            table[key] = [held, ident]
    elif held[-1] != ident:
        held.append(ident)


def _collect(found: set[int], held: int | list[int] | None) -> None:
    if held is None:
        return
    if isinstance(held, int):
        found.add(held)
    else:
        found.update(held)


class CandidateIndex:
    """Candidate intended domains for a typed one, from a fixed set of real domains."""

    def __init__(self, domains: Iterable[Domain] = (), protected: Iterable[Domain] = ()) -> None:
        self.domains: list[Domain] = []
        self._ids: dict[str, int] = {}
        self._near_names: _Postings = {}
        self._flat: _Postings = {}
        self._skeletons: _Postings = {}
        for domain in protected:
            self.add(domain, protected=True)
        for domain in domains:
            self.add(domain)

    def add(self, domain: Domain, *, protected: bool = False) -> bool:
        """Index one more domain (two-deletion keys when ``protected``); False if present."""
        if domain.ascii in self._ids:
            return False
        ident = len(self.domains)
        self.domains.append(domain)
        self._ids[domain.ascii] = ident
        for key in _deletions(domain.name, 2 if protected else 1):
            _post(self._near_names, key, ident)
        _post(self._flat, _flat(domain.name), ident)
        _post(self._flat, _flat(domain.unicode), ident)
        _post(self._skeletons, skeleton(domain.unicode), ident)
        return True

    def __len__(self) -> int:
        return len(self.domains)

    def __contains__(self, domain: Domain) -> bool:
        return domain.ascii in self._ids

    def candidates(self, typed: Domain) -> list[Domain]:
        """Domains of the index that ``typed`` may be a slip for (never ``typed`` itself)."""
        found: set[int] = set()
        near = self._near_names
        for name in _readings(typed):
            for key in _deletions(name, 1):
                _collect(found, near.get(key))
            _collect(found, self._flat.get(_flat(name)))
        _collect(found, self._skeletons.get(skeleton(typed.unicode)))
        own = self._ids.get(typed.ascii)
        return [self.domains[ident] for ident in found if ident != own]
