"""What a blanket rule may say, checked once (the Rule model) for the configuration file,
the REST API and the rules page; and what a blocked recipient is told."""

from __future__ import annotations

import pytest

from typogate import Config, Guard
from typogate.errors import ConfigError
from typogate.gateway.answers import refusal

ML_MESSAGE = "Mail to .ml is blocked: did you mean .mil?"


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"suffix": "com."}, "rules.0.suffix: Value error, 'com.' ends with a dot"),
        ({"suffix": "xx-not-a-suffix"}, "'xx-not-a-suffix' is not a public suffix"),
        ({"suffix": "gmial.com"}, "for one domain and its subdomains, write a domain rule"),
        ({"domain": "ml"}, "'ml' is a public suffix, not a domain"),
        ({"domain": "co.uk"}, "write a suffix rule"),
        ({"suffix": "ml", "except": ["partner.com"]}, "partner.com is not under ml"),
        ({"suffix": "ml", "senders": ["ann@"]}, "rules.0.senders: Value error, 'ann@'"),
        ({"suffix": "ml", "senders": ["ann@example.org"]}, "a rule for some senders only allows"),
    ],
)
def test_a_rule_that_would_not_do_what_it_says_is_refused(rule, problem):
    """Before: all of these were accepted (com. blocked every .com, a suffix gmial.com
    matched only its subdomains)."""
    with pytest.raises(ConfigError) as refused:
        Config.from_mapping({"rules": [{**rule, "action": "reject"}]})
    assert problem in str(refused.value)


def test_rules_are_kept_normalised():
    config = Config.from_mapping(
        {
            "rules": [
                {"suffix": ".ML", "action": "reject", "except": ["Partner.ML."]},
                {"domain": "Shop.Example", "action": "allow"},  # an unknown TLD: as PSL's *
            ]
        }
    )
    assert (config.rules[0].suffix, config.rules[0].exceptions) == ("ml", ["partner.ml"])
    assert config.rules[1].domain == "shop.example"


def test_a_protected_domain_under_a_blocking_rule_gets_no_other_domain_suggested():
    """Before: a suffix rule on com answered gmail.com with 'Did you mean ymail.com?'."""
    guard = Guard(Config.from_mapping({"rules": [{"suffix": "com", "action": "reject"}]}))
    for address in ("ann@gmail.com", "ann@mail.gmail.com"):
        verdict = guard.evaluate(address)
        assert (verdict.action, verdict.reason, verdict.suggestion) == (
            "reject",
            "blocked.suffix",
            None,
        )
        assert "mean" not in verdict.explanation and "mean" not in str(refusal(verdict))
    typo = guard.evaluate("ann@gmial.com")  # a slip under the rule still gets its suggestion
    assert typo.suggestion == "gmail.com" and "Did you mean gmail.com?" in typo.explanation


def test_a_rules_own_message_is_the_one_sentence_everywhere():
    """Before: the 550 reply dropped it, and check said it followed by a second question:
    'Mail to .ml is blocked: did you mean .mil? Did you mean army.mil?'."""
    config = Config.from_mapping(
        {"rules": [{"suffix": "ml", "action": "reject", "message": ML_MESSAGE}]}
    )
    verdict = Guard(config).evaluate("john@army.ml")
    assert verdict.explanation == ML_MESSAGE
    assert verdict.suggestion == "army.mil"  # still offered, in its own field
    reply = str(refusal(verdict))
    assert reply.startswith(f"550 5.7.1 {ML_MESSAGE} If army.ml is right")
    assert reply.lower().count("did you mean") == 1
