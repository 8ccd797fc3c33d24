"""The ranked look-alikes: typogate's error model, real suffixes, the mass cut."""

from __future__ import annotations

import math

import pytest

from typogate.domains import explain, parse_domain
from typogate.domains.names import is_real_suffix
from typogate.monitor import look_alikes


def ranked(domain: str, **options: float) -> dict[str, int]:
    return {x.domain: x.rank for x in look_alikes(parse_domain(domain), **options)}


def test_the_slips_of_every_kind_are_found():
    army = ranked("army.mil")
    assert {"army.ml", "arrny.mil", "amry.mil", "arny.mil", "armymil.com", "аrmy.mil"} <= set(army)
    assert "army-mil.com" in army  # merged suffix with a hyphen
    assert "usaf.mil" in ranked("us.af.mil")  # dropped dot
    assert "seibm.com" in ranked("se.ibm.com")
    assert "out-look.com" in ranked("outlook.com")  # hyphen
    assert {"gmial.com", "gmail.co", "gmai1.com"} <= set(ranked("gmail.com"))


def test_ranked_by_the_models_probability():
    found = look_alikes(parse_domain("army.mil"))
    meant = parse_domain("army.mil")
    assert [x.rank for x in found] == list(range(1, len(found) + 1))
    assert all(a.probability >= b.probability for a, b in zip(found, found[1:], strict=False))
    for look_alike in found[:40]:  # probability is exp(-cost) of the model's explanation
        cost = explain(parse_domain(look_alike.domain), meant).cost
        assert look_alike.probability == pytest.approx(math.exp(-cost))
    army = ranked("army.mil")
    assert army["army.ml"] < army["amry.mil"] < army["armymil.com"]


def test_only_real_suffixes_and_never_a_real_domain():
    found = look_alikes(parse_domain("army.mil"), real={"navy.mil", "arny.mil"})
    assert all(is_real_suffix(parse_domain(x.domain).suffix) for x in found)
    names = {x.domain for x in found}
    assert "arny.mil" not in names and "army.mil" not in names
    assert "army.mi" not in names  # .mi is no suffix: mail there bounces, it cannot leak


def test_cut_by_probability_mass_not_count():
    everything = look_alikes(parse_domain("army.mil"), coverage=1.0)
    total = sum(x.probability for x in everything)
    for coverage in (0.5, 0.9):
        kept = look_alikes(parse_domain("army.mil"), coverage=coverage)
        held = sum(x.probability for x in kept)
        assert held >= coverage * total > held - kept[-1].probability
        assert [x.domain for x in kept] == [x.domain for x in everything[: len(kept)]]
    # A short name has many cheap slips, a long one few: the same mass, different counts.
    assert len(look_alikes(parse_domain("ibm.com"))) != len(look_alikes(parse_domain("army.mil")))


def test_coverage_out_of_range_is_refused():
    with pytest.raises(ValueError):
        look_alikes(parse_domain("army.mil"), coverage=0.0)


def test_a_name_in_cyrillic_twins_throughout_is_found():
    # аррӏе.com, apple.com in Cyrillic letters with a palochka for the l (the whole-script
    # look-alike of 2017): the data reads the palochka as an i, a reader as the l it draws.
    assert "\u0430\u0440\u0440\u04cf\u0435.com" in ranked("apple.com")
    assert "\u0430\u043e\u04cf.com" in ranked("aol.com")
    assert "\u0443\u0430\u04bb\u043e\u043e.com" in ranked("yahoo.com")  # no l: as before
