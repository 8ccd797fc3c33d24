"""Blanket rules beside the model: block ``.ml`` except a partner, allow a domain outright."""

from __future__ import annotations

from typogate.config import Rule
from typogate.domains import Domain, InvalidAddress, parse_domain
from typogate.errors import ConfigError


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
