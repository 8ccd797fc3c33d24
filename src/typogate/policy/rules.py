"""Blanket rules beside the model: block ``.ml`` except a partner, allow a domain outright,
for every sender or for some."""

from __future__ import annotations

from collections import defaultdict

from typogate.config import Rule
from typogate.domains import Domain, InvalidAddress, parse_domain
from typogate.errors import ConfigError
from typogate.policy.relationships import levels, party_name


def _normal(text: str, what: str) -> str:
    try:
        return parse_domain(f"x.{text.strip('.')}").ascii.partition(".")[2]
    except InvalidAddress as error:
        raise ConfigError(f"rules: {what} {text!r}: {error.reason}") from None


class RuleBook:
    """The configured rules, matched most specific first (a domain rule beats a suffix rule).

    A domain rule covers the domain and its subdomains; a suffix rule every domain that ends
    in that suffix. A rule's exceptions (and their subdomains) fall through to the model.
    """

    def __init__(self, rules: list[Rule]) -> None:
        self._by_domain: dict[str, Rule] = {}
        self._by_suffix: dict[str, Rule] = {}
        self._exceptions: dict[int, frozenset[str]] = {}
        for rule in rules:
            if rule.domain is not None:
                self._by_domain[_normal(rule.domain, "domain")] = rule
            else:
                assert rule.suffix is not None
                self._by_suffix[_normal(rule.suffix, "suffix")] = rule
            self._exceptions[id(rule)] = frozenset(
                _normal(text, "exception") for text in rule.exceptions
            )

    def __bool__(self) -> bool:
        return bool(self._by_domain or self._by_suffix)

    def match(self, domain: Domain) -> Rule | None:
        """The rule that applies to ``domain``, or ``None``."""
        labels = domain.ascii.split(".")
        tails = [".".join(labels[cut:]) for cut in range(len(labels))]
        for tail in tails:
            rule = self._by_domain.get(tail)
            if rule is None and tail != domain.ascii:
                rule = self._by_suffix.get(tail)
            if rule is not None:
                if any(t in self._exceptions[id(rule)] for t in tails):
                    return None
                return rule
        return None


class SenderRules:
    """The allow rules that name senders: each covers what a blanket rule would, for the
    mail of the senders it names (an address, or a domain and every address at it)."""

    def __init__(self, rules: list[Rule]) -> None:
        named: dict[str, list[Rule]] = defaultdict(list)
        for rule in rules:
            for sender in rule.senders:
                named[party_name(sender)].append(rule)
        self._books = {party: RuleBook(theirs) for party, theirs in named.items()}

    def __bool__(self) -> bool:
        return bool(self._books)

    def match(self, sender: str, domain: Domain) -> Rule | None:
        """The rule that allows ``sender``'s mail to ``domain``: one naming its address
        first, then one naming its domain; ``None`` when none does."""
        for party in reversed(levels(sender)[1:]):
            book = self._books.get(party)
            rule = book.match(domain) if book is not None else None
            if rule is not None:
                return rule
        return None


def rule_books(rules: list[Rule]) -> tuple[RuleBook, SenderRules]:
    """The rules for every sender, and those for some senders only."""
    return (
        RuleBook([rule for rule in rules if not rule.senders]),
        SenderRules([rule for rule in rules if rule.senders]),
    )
