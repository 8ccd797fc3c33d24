"""Domain handling: normalisation, IDNA both ways, the public-suffix split, skeletons."""

import pytest

from typogate.domains import InvalidAddress, parse_address, parse_domain, skeleton


@pytest.mark.parametrize(
    "text",
    ["Army.MIL", " army.mil ", "army.mil.", "ARMY.mil.\n"],
)
def test_normalises_case_whitespace_and_trailing_dot(text):
    assert parse_domain(text).ascii == "army.mil"


def test_idna_forms_are_the_same_domain():
    unicode_form = parse_domain("bücher.de")
    ascii_form = parse_domain("xn--bcher-kva.de")
    assert unicode_form == ascii_form
    assert unicode_form.ascii == "xn--bcher-kva.de"
    assert unicode_form.unicode == "bücher.de"


def _under_every_rule():
    # A domain one and two labels below each ICANN rule, wildcards and exceptions included.
    from typogate.domains.names import _SUFFIX_RULES

    for rule in sorted(_SUFFIX_RULES):
        base = rule.lstrip("!").removeprefix("*.")
        yield f"example.{base}"
        yield f"mail.example.{base}"


def test_public_suffix_split_agrees_with_publicsuffixlist():
    # typogate reads the package's list itself (for start-up time); the answers must not move.
    from publicsuffixlist import PublicSuffixList

    reference = PublicSuffixList(only_icann=True, accept_unknown=False)
    for text in _under_every_rule():
        try:
            domain = parse_domain(text)
        except InvalidAddress:
            assert reference.publicsuffix(text) in (None, text.encode("idna").decode()), text
            continue
        expected = reference.publicsuffix(domain.ascii) or domain.ascii.rsplit(".", 1)[-1]
        assert domain.ascii.endswith("." + expected), text
        assert domain.suffix.count(".") == expected.count("."), text


@pytest.mark.parametrize(
    ("text", "suffix", "name", "registrable"),
    [
        ("army.mil", "mil", "army", "army.mil"),
        ("us.af.mil", "mil", "us.af", "af.mil"),
        ("mail.example.co.uk", "co.uk", "mail.example", "example.co.uk"),
        ("gmail.con", "con", "gmail", "gmail.con"),  # unknown suffix: the last label
        ("bücher.de", "de", "bücher", "bücher.de"),
        ("example.рф", "рф", "example", "example.рф"),
    ],
)
def test_public_suffix_split(text, suffix, name, registrable):
    domain = parse_domain(text)
    assert (domain.suffix, domain.name, domain.registrable) == (suffix, name, registrable)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("gmail", "period"),
        ("a..b.com", "period"),
        ("-army.mil", "hyphen at its start"),
        ("co.uk", "public suffix"),
        ("com", "period"),
        ("", "not a domain"),
        ("[127.0.0.1]", "not a domain"),
        ("x" * 64 + ".com", "so many characters"),
    ],
)
def test_invalid_domains_say_why(text, words):
    with pytest.raises(InvalidAddress) as raised:
        parse_domain(text)
    assert words in raised.value.reason.lower()


@pytest.mark.parametrize(
    ("text", "local", "domain"),
    [
        ("john@army.ml", "john", "army.ml"),
        ("<John.Smith@Army.ML>", "John.Smith", "army.ml"),
        ('"john smith"@army.mil', '"john smith"', "army.mil"),
        ("jöhn@bücher.de", "jöhn", "bücher.de"),
        ("x@XN--BCHER-KVA.de", "x", "bücher.de"),
    ],
)
def test_parse_address(text, local, domain):
    recipient = parse_address(text)
    assert recipient.domain.unicode == domain
    assert recipient.local.strip('"').replace(" ", "") == local.strip('"').replace(" ", "")


@pytest.mark.parametrize(
    "text",
    [
        "no-at-sign",
        "@army.mil",
        "a@@army.mil",
        "a b@army.mil",
        "a@army..mil",
        "a@",
        "a@army.mil\x00",
    ],
)
def test_malformed_addresses_raise_a_clear_error(text):
    with pytest.raises(InvalidAddress) as raised:
        parse_address(text)
    assert raised.value.reason  # a sentence, not a stack trace
    assert isinstance(raised.value, ValueError)


def test_skeleton_catches_unicode_and_ascii_lookalikes():
    assert skeleton("аrmy.mil") == skeleton("army.mil")  # Cyrillic а
    assert skeleton("arrny.mil") == skeleton("army.mil")  # rn for m
    assert skeleton("g00gle.com") == skeleton("google.com")  # zeros for o
    assert skeleton("paypa1.com") == skeleton("paypal.com")  # one for l
    assert skeleton("navy.mil") != skeleton("army.mil")
