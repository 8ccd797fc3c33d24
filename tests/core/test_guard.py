"""The Guard's decisions on every typo class, the never-flag rules, ambiguity and rules."""

import pytest

import typogate
from typogate import Action, Config, Guard, InvalidAddress
from typogate.policy import Rule
from typogate.vocabulary import Evidence, Risk


@pytest.fixture(scope="module")
def guard():
    guard = Guard(
        Config(
            domains={
                "protected": [
                    "army.mil",
                    "navy.mil",
                    "af.mil",
                    "us.af.mil",
                    "se.ibm.com",
                    "gmail.com",
                    "hotmail.com",
                    "yahoo.com",
                    "google.com",
                    "paypal.com",
                    "ftc.gov",
                    "fcc.gov",
                    "example.com",
                ],
                "known": ["partner-firm.com", "acme-widgets.com"],
            }
        )
    )
    # Correspondents this organisation writes to often: their near-twins are alarming.
    guard.learn({"partner-firm.com": 500, "acme-widgets.com": 500})
    return guard


def test_a_known_domain_without_history_is_weak_evidence():
    guard = Guard(Config(domains={"protected": ["army.mil"], "known": ["franklinma.gov"]}))
    assert not guard.evaluate("clerk@franklinpa.gov").is_alert


TYPOS = [
    # (typed, meant, reason)
    ("army.ml", "army.mil", "typo.suffix"),
    ("navy.ml", "navy.mil", "typo.suffix"),
    ("gmail.co", "gmail.com", "typo.suffix"),
    ("gmail.cm", "gmail.com", "typo.suffix"),
    ("gmail.con", "gmail.com", "typo.suffix"),
    ("gmail.om", "gmail.com", "typo.suffix"),
    ("ftc.gv", "ftc.gov", "typo.suffix"),
    ("army.gov", "army.mil", "typo.suffix"),  # one government's suffix for the other's
    ("gmai.com", "gmail.com", "typo.omission"),
    ("gmaill.com", "gmail.com", "typo.doubling"),
    ("gmial.com", "gmail.com", "typo.transposition"),
    ("gnail.com", "gmail.com", "typo.keyboard"),
    ("hotmaik.com", "hotmail.com", "typo.keyboard"),
    ("hotmaill.com", "hotmail.com", "typo.doubling"),
    ("yahooo.com", "yahoo.com", "typo.doubling"),
    ("hotmial.com", "hotmail.com", "typo.transposition"),
    ("seibm.com", "se.ibm.com", "typo.dot"),
    ("usaf.mil", "us.af.mil", "typo.dot"),
    ("gmailc.om", "gmail.com", "typo.dot"),
    ("armymil.com", "army.mil", "typo.merged_suffix"),
    ("army-mil.com", "army.mil", "typo.merged_suffix"),
    ("gmail.com.com", "gmail.com", "typo.merged_suffix"),
    ("gmail.comcom", "gmail.com", "typo.merged_suffix"),  # and without the dot
    # The suffix slipped, then typed again after it (fnando/email_typo's example.con.com).
    ("gmail.co.com", "gmail.com", "typo.merged_suffix"),
    ("example.con.com", "example.com", "typo.merged_suffix"),
    ("army.ml.com", "army.mil", "typo.merged_suffix"),  # not army.me.com: ml.com is a bank's
    # The whole domain typed under a country's suffix, where that country's registry makes
    # the two labels one public suffix (com.co, gov.ml, mil.co): read as army.mil.ml is.
    ("gmail.com.co", "gmail.com", "typo.merged_suffix"),
    ("ftc.gov.ml", "ftc.gov", "typo.merged_suffix"),
    ("navy.mil.co", "navy.mil", "typo.merged_suffix"),
    ("us.af.ml", "us.af.mil", "typo.suffix"),
    ("arrny.mil", "army.mil", "typo.confusable"),
    ("g00gle.com", "google.com", "typo.confusable"),
    ("paypa1.com", "paypal.com", "typo.confusable"),
    ("аrmy.mil", "army.mil", "typo.confusable"),
    ("xn--rmy-5cd.mil", "army.mil", "typo.confusable"),
    ("acme-widget.com", "acme-widgets.com", "typo.omission"),
    ("partnerfirm.com", "partner-firm.com", "typo.hyphen"),
]


@pytest.mark.parametrize(("typed", "meant", "reason"), TYPOS)
def test_each_typo_class_is_caught_with_its_suggestion(guard, typed, meant, reason):
    verdict = guard.evaluate(f"john@{typed}")
    assert verdict.is_alert, verdict
    assert verdict.suggestion == meant
    assert verdict.reason == reason
    assert verdict.suggested_recipient == f"john@{meant}"
    assert meant in verdict.explanation
    assert 0.5 <= verdict.score <= 1.0


def test_typo_under_a_subdomain_keeps_the_subdomain(guard):
    verdict = guard.evaluate("ops@mail.army.ml")
    assert verdict.action is Action.REJECT
    assert verdict.suggestion == "mail.army.mil"


@pytest.mark.parametrize(
    ("recipient", "meant", "reason", "action"),
    [
        ("jane@gmailcom", "gmail.com", "typo.dot", Action.REJECT),  # the dot left out
        ("jane@armymil", "army.mil", "typo.dot", Action.REJECT),
        ("jane@usafmil", "us.af.mil", "typo.dot", Action.REJECT),
        ("jane@gmail", "gmail.com", "typo.suffix", Action.REJECT),  # the suffix left off
        ("jane@army", "army.mil", "typo.suffix", Action.REJECT),  # .army is a TLD: no mailbox
        # A comma for the dot: a mail program reads two addresses, jane@gmail and com.
        ("jane@gmail,com", "gmail.com", "typo.suffix", Action.REJECT),
        # A slip in the name as well as the suffix left off: it was allowed as no domain.
        ("jane@gmial", "gmail.com", "typo.suffix", Action.REJECT),
        ("jane@hotmial", "hotmail.com", "typo.suffix", Action.REJECT),
        ("jane@yaho", "yahoo.com", "typo.suffix", Action.WARN),  # short: likelier a host
    ],
)
def test_a_bare_host_that_is_a_domain_with_its_dots_or_suffix_left_out(
    guard, recipient, meant, reason, action
):
    verdict = guard.evaluate(recipient)
    assert (verdict.suggestion, verdict.reason, verdict.action) == (meant, reason, action)
    assert verdict.recipient == "jane@" + recipient.split("@")[1].split(",")[0]
    assert verdict.risk is Risk.MISDELIVERY  # no stranger receives mail at a bare host
    assert verdict.suggested_recipient == f"jane@{meant}"
    assert f"Did you mean {meant}?" in verdict.explanation


def test_a_suffix_cut_short_is_one_slip():
    # hotmail.c: .com cut short (typing stopped), not .fr with a wrong key and a letter
    # left out; it was ambiguous, hotmail.fr named first.
    guard = Guard(Config(domains={"protected": ["hotmail.com", "hotmail.fr", "example.info"]}))
    verdict = guard.evaluate("jane@hotmail.c")
    assert (verdict.suggestion, verdict.action) == ("hotmail.com", Action.REJECT)
    assert guard.evaluate("jane@example.inf").suggestion == "example.info"
    # Only where the cut makes no suffix at all: example.in is India's, maybe meant.
    assert not guard.evaluate("jane@example.in").is_alert


def test_a_left_off_suffix_is_read_as_the_habitual_one():
    guard = Guard(Config(domains={"protected": ["yahoo.com", "yahoo.co.uk", "yahoo.fr"]}))
    assert guard.evaluate("jane@yahoo").suggestion == "yahoo.com"


@pytest.mark.parametrize(
    "recipient", ["jane@mailhub", "jane@localhost", "jane@co.uk", "jane@exchange", "jane@relay"]
)
def test_a_bare_host_that_is_no_domain_anyone_meant_is_allowed(guard, recipient):
    assert guard.evaluate(recipient).reason == "allowed.no_domain_name"


def test_a_host_of_the_mta_s_own_is_no_slip_though_it_spells_a_protected_name():
    config = Config(domains={"protected": ["mail.mil"]}, gateway={"own_domains": ["mail"]})
    assert Guard(config).evaluate("root@mail").reason == "allowed.own_host"
    assert Guard(Config(domains={"protected": ["mail.mil"]})).evaluate("root@mail").is_alert


def test_a_bare_host_slip_takes_the_misdelivery_actions():
    config = Config(domains={"protected": ["gmail.com"]}, actions={"misdelivery": {"typo": "warn"}})
    assert Guard(config).evaluate("jane@gmailcom").action is Action.WARN


@pytest.mark.parametrize(
    "domain", ["fcc.gov", "ftc.gov", "army.mil", "navy.mil", "partner-firm.com", "af.mil"]
)
def test_protected_and_known_domains_are_never_typos(guard, domain):
    verdict = guard.evaluate(f"a@{domain}")
    assert verdict.action is Action.ALLOW
    assert verdict.reason in {"allowed.protected", "allowed.known"}


def test_subdomains_of_real_domains_are_allowed(guard):
    verdict = guard.evaluate("a@hq.army.mil")
    assert verdict.action is Action.ALLOW
    assert verdict.reason == "allowed.subdomain"


@pytest.mark.parametrize("domain", ["wikipedia.org", "kicksend.com", "bücher.de", "company.io"])
def test_unrelated_domains_are_allowed(guard, domain):
    verdict = guard.evaluate(f"a@{domain}")
    assert verdict.action is Action.ALLOW
    assert verdict.reason == "allowed.no_likely_typo"
    assert verdict.suggestion is None


def test_another_real_suffix_is_not_a_slip(guard):
    # example.de and example.ca are real domains elsewhere, not mistakes for example.com
    for domain in ("example.de", "example.ca", "gmail.de"):
        assert not guard.evaluate(f"a@{domain}").is_alert, domain


def test_the_other_government_suffix_is_a_slip_only_with_the_name_right():
    guard = Guard(Config(domains={"protected": ["deomi.mil", "army.mil"]}))
    assert guard.evaluate("a@army.gov").suggestion == "army.mil"
    # A real .gov name a slip away as well is no .mil slip (bench/quality.py's unseen .gov).
    assert not guard.evaluate("a@cliomi.gov").is_alert


@pytest.mark.parametrize("profile", ["us-gov", "providers"])
def test_a_providers_own_company_domain_is_no_slip_of_its_mail_domain(profile):
    guard = Guard(Config.from_mapping({"profile": profile}))
    # AT&T's staff write from att.com, its customers from att.net: one owner, both real.
    for domain in ("att.com", "verizon.com", "comcast.com", "cox.com", "charter.com"):
        verdict = guard.evaluate(f"sales@{domain}")
        assert verdict.reason == "allowed.known", verdict
    assert guard.evaluate("jane@att.nte").suggestion == "att.net"
    assert guard.evaluate("jane@gmail.net").suggestion == "gmail.com"  # not Google's


@pytest.mark.parametrize("profile", ["us-gov", "providers"])
def test_a_providers_country_domain_is_no_slip_but_an_appended_country_is(profile):
    guard = Guard(Config.from_mapping({"profile": profile}))
    # Real sign-up domains whose suffix (com.br, com.pe) swallows the provider's own .com.
    for domain in ("yahoo.com.br", "outlook.com.pe", "live.com.ar", "hotmail.com.ar"):
        assert guard.evaluate(f"ana@{domain}").reason == "allowed.known", domain
    verdict = guard.evaluate("ana@gmail.com.co")  # Google has no gmail.com.co
    assert (verdict.suggestion, verdict.reason) == ("gmail.com", "typo.merged_suffix")
    assert "gmail.com typed as a name under .co" in verdict.explanation
    # What follows the domain must be a suffix for a slip: this is a host of hassle-me.com,
    # a disposable service that names its hosts so; a look-alike, which reads as gmail.com.
    verdict = guard.evaluate("ana@gmail.com.hassle-me.com")
    assert (verdict.suggestion, verdict.reason) == ("gmail.com", "typo.confusable")
    assert "begins with gmail.com" in verdict.explanation


@pytest.mark.parametrize("profile", ["us-gov", "providers"])
def test_a_providers_own_domain_under_another_suffix_is_no_slip_of_it(profile):
    # Found on the month: hotmail.gr was rejected as a slip of hotmail.fr, and outlook.cl
    # and fastmail.fm warned about for a sender who writes to outlook.com and fastmail.com.
    # Each is the same provider's: a slip between them cannot leak.
    guard = Guard(Config.from_mapping({"profile": profile}))
    for _ in range(30):
        for provider in ("outlook.com", "fastmail.com", "hotmail.fr"):
            guard.observe("sue@example.org", provider, Evidence.SENT)
    for domain in ("hotmail.gr", "outlook.cl", "fastmail.fm", "hotmail.de", "protonmail.ch"):
        assert guard.evaluate(f"ana@{domain}").reason == "allowed.known", domain
        assert not guard.evaluate(f"ana@{domain}", sender="sue@example.org").is_alert, domain
    # .com typed as .co is a slip whoever owns the name: not listed, still caught.
    for domain, meant in (("hotmail.co", "hotmail.com"), ("yahoo.co", "yahoo.com")):
        verdict = guard.evaluate(f"ana@{domain}", sender="sue@example.org")
        assert (verdict.suggestion, verdict.reason) == (meant, "typo.suffix"), domain


def test_equally_likely_intended_domains_are_reported_as_ambiguous():
    guard = Guard(Config(domains={"protected": ["example.de", "example.fr"]}))
    verdict = guard.evaluate("a@example.fe")  # f->d and r->e are both neighbouring keys
    assert verdict.is_alert
    assert verdict.reason == "typo.ambiguous"
    assert verdict.suggestion is None
    assert set(verdict.alternatives) == {"example.de", "example.fr"}
    assert "example.de" in verdict.explanation and "example.fr" in verdict.explanation


def test_sender_own_domain_is_allowed():
    guard = Guard(Config(domains={"protected": ["acme.com"]}))
    assert guard.evaluate("a@acne.com").is_alert
    assert not guard.evaluate("a@acne.com", sender="boss@acne.com").is_alert


def test_blanket_suffix_rule_with_exception_and_suggestion():
    config = Config.from_mapping(
        {
            "domains": {"protected": ["army.mil"]},
            "rules": [{"suffix": "ml", "action": "reject", "except": ["partner.ml"]}],
        }
    )
    guard = Guard(config)
    blocked = guard.evaluate("a@army.ml")
    assert blocked.action is Action.REJECT
    assert blocked.reason == "blocked.suffix"
    assert blocked.rule == "rule:suffix:ml"
    assert blocked.suggestion == "army.mil"
    assert guard.evaluate("a@shop.ml").reason == "blocked.suffix"
    assert guard.evaluate("a@partner.ml").action is Action.ALLOW
    assert guard.evaluate("a@mail.partner.ml").action is Action.ALLOW


def test_allow_rule_overrides_the_model_and_domain_rule_beats_suffix_rule():
    config = Config.from_mapping(
        {
            "domains": {"protected": ["army.mil"]},
            "rules": [
                {"suffix": "ml", "action": "hold"},
                {"domain": "army.ml", "action": "allow", "message": "our Mali office"},
            ],
        }
    )
    guard = Guard(config)
    verdict = guard.evaluate("a@army.ml")
    assert verdict.action is Action.ALLOW
    assert verdict.explanation == "our Mali office"
    assert guard.evaluate("a@navy.ml").action is Action.HOLD


def test_an_allow_rule_for_some_senders_allows_their_mail_and_no_one_elses():
    """Before: a rule was for everyone. cmail.net, one sender's real correspondent beside
    gmail.com, could only be allowed for every sender, its slips with it."""
    config = Config.from_mapping(
        {
            "domains": {"protected": ["gmail.com", "army.mil"]},
            "rules": [
                {"suffix": "ml", "action": "reject"},
                {"domain": "cmail.net", "action": "allow", "senders": ["Ann@Example.org"]},
                {"domain": "army.ml", "action": "allow", "senders": ["mali.example.org"]},
            ],
        }
    )
    guard = Guard(config)
    allowed = guard.evaluate("jo@cmail.net", sender="ann@example.org")
    assert (allowed.action, allowed.reason, allowed.rule) == (
        Action.ALLOW,
        "allowed.rule",
        "rule:domain:cmail.net",
    )
    assert "ann@example.org" in allowed.explanation
    assert guard.evaluate("jo@mail.cmail.net", sender="ann@example.org").action is Action.ALLOW
    # Everyone else, and a sender nobody vouched for, is judged as before.
    assert guard.evaluate("jo@cmail.net", sender="bob@example.org").is_alert
    assert guard.evaluate("jo@cmail.net").is_alert
    assert guard.evaluate("jo@cmail.net", sender="ann@example.org", vouched=False).is_alert
    # A sender domain covers its addresses, and the rule beats a blanket block for them.
    assert guard.evaluate("gen@army.ml", sender="kim@mali.example.org").action is Action.ALLOW
    assert guard.evaluate("gen@army.ml", sender="kim@example.org").reason == "blocked.suffix"
    # What it covers and nothing more.
    assert guard.evaluate("jo@gmial.com", sender="ann@example.org").is_alert


def test_actions_and_thresholds_come_from_the_config():
    config = Config.from_mapping(
        {"domains": {"protected": ["army.mil"]}, "actions": {"typo": "hold"}}
    )
    assert Guard(config).evaluate("a@army.ml").action is Action.HOLD
    lenient = Config.from_mapping(
        {"domains": {"protected": ["army.mil"]}, "model": {"reject_at": 1.0, "warn_at": 1.0}}
    )
    assert Guard(lenient).evaluate("a@army.ml").action is Action.ALLOW


def test_learned_correspondents_stop_being_flagged_and_protect_their_twins():
    guard = Guard(Config(domains={"protected": ["army.mil"]}))
    assert not guard.evaluate("a@acme-corp.com").is_alert
    assert not guard.evaluate("a@acme-crop.com").is_alert  # nothing known to be near yet
    guard.learn({"acme-corp.com": 40})
    assert guard.evaluate("a@acme-corp.com").reason == "allowed.known"
    twin = guard.evaluate("a@acme-crop.com")
    assert twin.is_alert and twin.suggestion == "acme-corp.com"


def test_a_few_mails_are_not_yet_a_correspondent():
    guard = Guard(Config(domains={"protected": ["army.mil"]}))
    guard.learn({"army.ml": 1})
    assert guard.evaluate("a@army.ml").is_alert


def test_the_one_call_takes_the_name_a_recipient_is_shown_under():
    # For a mail program's add-in, which sees the display name before the mail leaves.
    verdict = typogate.check("john@evil.com", shown_as="John (john@army.mil)")
    assert verdict.action is Action.REJECT and "is shown as john@army.mil" in verdict.explanation
    assert typogate.check("john@evil.com", shown_as="John").action is Action.ALLOW


def test_invalid_recipient_raises():
    guard = Guard(Config(domains={"protected": ["army.mil"]}))
    with pytest.raises(InvalidAddress):
        guard.evaluate("not an address")


def test_default_profile_out_of_the_box():
    verdict = typogate.check("john@army.ml")
    assert verdict.action is Action.REJECT
    assert verdict.suggestion == "army.mil"
    assert typogate.check("jane@army.mil").action is Action.ALLOW
    assert typogate.check("jane@gmial.com").suggestion == "gmail.com"
    assert typogate.check("jane@gmail.c").action is Action.REJECT  # was a warning
    # co.com is a registrable domain near cox.net, but the slip is the suffix typed twice.
    assert typogate.check("jane@gmail.co.com").suggestion == "gmail.com"
    # arm.gov is real, but .gov for .mil is a slip of memory, as .net for .com is.
    assert typogate.check("jane@army.gov").suggestion == "army.mil"
    assert typogate.check("jane@navy.gov").suggestion == "navy.mil"
    # every real .gov domain is known: a city's domain is not a typo of a federal one
    assert not typogate.check("clerk@ftc.gov").is_alert
    assert not typogate.check("clerk@fcc.gov").is_alert


def test_verdict_to_dict_is_json_ready():
    data = typogate.check("john@army.ml").to_dict()
    for key in (
        "recipient",
        "domain",
        "action",
        "reason",
        "explanation",
        "suggestion",
        "score",
        "rule",
    ):
        assert key in data
    assert data["action"] == "reject" and data["suggestion"] == "army.mil"


def test_mixed_script_label_is_flagged_even_without_a_twin(guard):
    verdict = guard.evaluate("a@армy.mil")  # Cyrillic а р м with a Latin y
    assert verdict.is_alert
    assert verdict.reason == "typo.confusable"
    assert not guard.evaluate("a@пример.рф").is_alert  # all Cyrillic: a real IDN


# Latin letters and the Cyrillic letters that pass for them.
_CYRILLIC_TWINS = {
    "a": "\u0430",
    "c": "\u0441",
    "e": "\u0435",
    "o": "\u043e",
    "p": "\u0440",
    "y": "\u0443",
}


def _spoofs_one_slip_away(listed: str) -> set[str]:
    """``listed`` with one letter left out, then each twin letter of the rest made Cyrillic
    in turn, under its own suffix and four others: near the listed name, none on it."""
    name, _, suffix = listed.partition(".")
    made = set()
    for cut in range(len(name)):
        shorter = name[:cut] + name[cut + 1 :]
        for at, letter in enumerate(shorter):
            if letter in _CYRILLIC_TWINS:
                spoof = shorter[:at] + _CYRILLIC_TWINS[letter] + shorter[at + 1 :]
                made.update(f"{spoof}.{under}" for under in {suffix, "com", "net", "co", "org"})
    return made


def test_mixed_script_label_is_flagged_beside_a_weak_twin_too():
    # A weak twin, below the warning, once let such a spoof pass (yаho.net, сloud.net,
    # gmаi.co, rmyа.mil: 30 of these) that was rejected when it was near nothing.
    listed = ["gmail.com", "yahoo.com", "outlook.com", "icloud.com", "army.mil", "proton.me"]
    spoofs = sorted(set().union(*map(_spoofs_one_slip_away, listed)))
    passed = [text for text in spoofs if not typogate.check(f"a@{text}").is_alert]
    assert len(spoofs) > 250 and not passed, passed
    assert typogate.check("a@y\u0430ho.net").reason == "typo.confusable"


def test_mixed_script_label_is_never_only_a_possible_slip():
    # navy.mi + a Cyrillic i: a suffix slip of navy.mil (navy.mii) on its own would be a
    # warning. (With a palochka, navy.miӏ, it is read as the l it draws: navy.mil itself.)
    verdict = typogate.check("a@navy.mi\u0456")
    assert verdict.action is Action.REJECT
    assert verdict.reason == "typo.confusable" and verdict.suggestion == "navy.mil"
    assert "spoofing trick" in verdict.explanation


@pytest.mark.parametrize("text", ["a@ar\u200dmy.mil", "a@army\u202e.mil", "a@xn--zz.mil"])
def test_invisible_and_bidi_characters_are_invalid(guard, text):
    with pytest.raises(InvalidAddress):
        guard.evaluate(text)


# Unicode's confusables data reads a capital I as an l; a domain's case is gone by the time
# DNS sees it, so aoI.com goes to aoi.com while its reader sees aol.com. (A longer name, gmaiI.com,
# is caught as a slip of gmail.com whatever its case: an i for an l.)
@pytest.mark.parametrize(
    ("written", "goes_to", "seen"),
    [
        ("a@aoI.com", "aoi.com", "aol.com"),
        ("a@Ieo.gov", "ieo.gov", "leo.gov"),
        ('"billing dept"@aoI.com', "aoi.com", "aol.com"),  # read the long way
        ("aoI.com", "aoi.com", "aol.com"),  # a bare domain, as typogate check takes it
    ],
)
def test_a_capital_i_that_reads_as_an_l_is_a_look_alike(written, goes_to, seen):
    guard = Guard(Config())
    judged = guard.evaluate(written) if "@" in written else guard.judge_domain(written)
    verdict = judged.judgement if isinstance(judged, typogate.Verdict) else judged
    assert verdict.domain == goes_to and verdict.action is Action.REJECT
    assert verdict.reason == "typo.confusable" and verdict.suggestion == seen
    assert "capital I" in verdict.explanation


# The capital I's rule, for every character UTS #46 maps to one that reads otherwise: a
# capital whose lower case looks different (Ƅ reads as b and goes as ƅ; a full-width I), or
# the long s (ſ reads as f and goes as s). Each went to a name nobody knew, allowed.
@pytest.mark.parametrize(
    ("written", "goes_to", "seen"),
    [
        ("a@we\u0184.de", "we\u0185.de", "web.de"),  # weƄ.de
        ("a@ao\uff29.com", "aoi.com", "aol.com"),  # aoＩ.com, a full-width capital I
        ("a@gm\ua7b3.net", "gm\uab53.net", "gmx.net"),  # gmꞳ.net, a Latin capital chi
        ("a@\u017fox.com", "sox.com", "fox.com"),  # ſox.com
    ],
)
def test_a_letter_that_goes_as_another_is_judged_as_it_reads(written, goes_to, seen):
    guard = Guard(Config(domains={"protected": ["web.de", "aol.com", "gmx.net", "fox.com"]}))
    verdict = guard.evaluate(written)
    assert verdict.judgement.domain == goes_to
    assert verdict.action is Action.REJECT, verdict
    assert verdict.reason == "typo.confusable" and verdict.suggestion == seen
    assert f"reads as {seen}" in verdict.explanation


# dIa.mil reads as dla.mil (Defense Logistics) and goes to dia.mil (Defense Intelligence):
# both protected, so the mail reaches a real agency, but perhaps not the one its sender
# read. Allowed as protected before; a warning now, naming both.
@pytest.mark.parametrize(
    ("written", "goes_to", "seen"),
    [
        ("a@dIa.mil", "dia.mil", "dla.mil"),
        ("a@bIs.gov", "bis.gov", "bls.gov"),
        ("a@\u017fec.gov", "sec.gov", "fec.gov"),  # ſec.gov
    ],
)
def test_a_name_that_reads_as_one_protected_domain_and_goes_to_another_is_warned(
    written, goes_to, seen
):
    verdict = Guard().evaluate(written)
    assert verdict.judgement.domain == goes_to
    assert (verdict.action, verdict.reason) == (Action.WARN, "typo.confusable"), verdict
    assert verdict.suggestion == seen and verdict.risk.value == "misdelivery"
    assert f"goes to {goes_to}" in verdict.explanation and f"reads as {seen}" in verdict.explanation


@pytest.mark.parametrize("written", ["a@DIA.mil", "a@dia.mil", "a@Dia.mil", "a@Irs.gov"])
def test_a_protected_domain_written_plainly_is_allowed(written):
    assert Guard().evaluate(written).action is Action.ALLOW


# Where the route leads on from the mail server's own domain (the percent hack, a bang path),
# or a comment follows the domain, the host is still read as typed: its capital I too.
@pytest.mark.parametrize(
    "written",
    ["a%aoI.com@example.org", "aoI.com!a@example.org", "a@aoI.com (work)", "a@aoI.com(x)"],
)
def test_a_capital_i_reads_as_an_l_wherever_the_route_names_the_host(written):
    guard = Guard(Config(gateway={"own_domains": ["example.org"]}))
    verdict = guard.evaluate(written)
    assert verdict.recipient == "a@aoi.com"
    assert verdict.action is Action.REJECT, verdict
    assert verdict.reason == "typo.confusable" and verdict.suggestion == "aol.com"
    assert "capital I" in verdict.explanation


@pytest.mark.parametrize(
    "written", ["a@AOI.COM", "a@AOI.com", "Ian@army.mil", "a@Iowa.gov", "a@aoi.com"]
)
def test_a_capital_i_alone_is_no_look_alike(written):
    # A label in upper case throughout, an I outside the domain, or no l-reading that is a
    # real domain.
    assert typogate.check(written).action is Action.ALLOW


# The lower-case palochka draws the same stroke as its capital, which the confusables data
# reads as an l; the data reads the lower-case one as a dotless i. So аррӏе.com, all Cyrillic
# (the look-alike of apple.com that browsers began to show as xn--80ak6aa92e.com in 2017),
# had the skeleton appie.com and was allowed. Chromium reads the palochka both ways.
@pytest.mark.parametrize(
    ("written", "seen"),
    [
        ("a@\u0430\u043e\u04cf.com", "aol.com"),  # аоӏ.com
        ("a@\u0430\u043e\u04c0.com", "aol.com"),  # its capital, folded by IDNA to the above
        ("a@\u0430\u0440\u0440\u04cf\u0435.com", "apple.com"),  # аррӏе.com
        ("a@\u0440\u0430\u0443\u0440\u0430\u04cf.com", "paypal.com"),  # раураӏ.com
        ("a@\u0455\u0441\u04cf.com", "sci.com"),  # ѕсӏ.com: read as an i, as before
    ],
)
def test_a_palochka_reads_as_an_l_as_well_as_an_i(written, seen):
    guard = Guard(Config(domains={"protected": ["aol.com", "apple.com", "paypal.com", "sci.com"]}))
    verdict = guard.evaluate(written)
    assert verdict.action is Action.REJECT, verdict
    assert verdict.reason == "typo.confusable" and verdict.suggestion == seen


# A dot above an i or a j falls on the dot the letter has (Unicode's Soft_Dotted), and a
# dotless i with a dot above is an i: gmaı̇l.com reads as gmail.com, and was allowed.
@pytest.mark.parametrize(
    ("written", "seen"),
    [
        ("a@gma\u0131\u0307l.com", "gmail.com"),
        ("a@\u0131\u0307bm.com", "ibm.com"),
        ("a@m\u0131\u0307t.edu", "mit.edu"),
        ("a@gmai\u0307l.com", "gmail.com"),  # an i with a second dot: was an extra letter
        ("a@j\u0307pl.nasa.gov", "jpl.nasa.gov"),
    ],
)
def test_a_dot_above_an_i_is_the_dot_it_has(written, seen):
    protected = ["gmail.com", "ibm.com", "mit.edu", "jpl.nasa.gov"]
    guard = Guard(Config(domains={"protected": protected}))
    verdict = guard.evaluate(written)
    assert verdict.action is Action.REJECT, verdict
    assert verdict.reason == "typo.confusable" and verdict.suggestion == seen


# An accent is priced as a look-alike, not as any other letter: wéb.de and ǵmx.net were
# allowed as short names "more likely meant as written", though a dead key or an
# autocorrection types them and a reader overlooks the mark (bench/disguise.py).
@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("a@w\u00e9b.de", "web.de"),  # wéb.de
        ("a@\u01f5mx.net", "gmx.net"),  # ǵmx.net: the first letter
        ("a@gmx\u0308.net", "gmx.net"),  # gmẍ.net
        ("a@xn--wb-bja.de", "web.de"),  # wéb.de as its A-label
    ],
)
def test_an_accent_on_a_short_protected_name_is_a_slip(written, meant):
    verdict = Guard().evaluate(written)
    assert verdict.action is Action.REJECT, verdict
    assert verdict.suggestion == meant and ", an accent" in verdict.explanation


# A mark no letter holds precomposed is an accent too, and so is a second one on a letter;
# gmä́il.com, with two, was near nothing the index offered, and allowed.
@pytest.mark.parametrize(
    ("written", "meant", "said"),
    [
        ("a@gm\u00e4\u0301il.com", "gmail.com", "'ä' for 'a', an accent; extra acute accent"),
        ("a@\u00ff\u0301ahoo.com", "yahoo.com", "extra acute accent"),  # ÿ́ahoo.com
        ("a@ao\u0327l.com", "aol.com", "extra cedilla"),  # ao̧l.com: a cedilla under an o
    ],
)
def test_accents_stacked_or_unjoined_are_slips_too(written, meant, said):
    verdict = Guard().evaluate(written)
    assert verdict.action is Action.REJECT, verdict
    assert verdict.suggestion == meant and said in verdict.explanation


# A stroke, hook or bar that Unicode does not decompose (ł is an l with a stroke, not an l
# and a mark) is overlooked as an accent is; aoł.com and wɇb.de were allowed as names of
# their own, and ɠmail.com offered mail.com.
@pytest.mark.parametrize(
    ("written", "meant", "said"),
    [
        ("a@ao\u0142.com", "aol.com", "'\u0142' for 'l', a stroke"),  # aoł.com
        ("a@w\u0247b.de", "web.de", "'\u0247' for 'e', a stroke"),  # wɇb.de
        ("a@q\u024b.com", "qq.com", "'\u024b' for 'q', a hook tail"),  # qɋ.com
        ("a@\u0260mx.net", "gmx.net", "'\u0260' for 'g', a hook"),  # ɠmx.net
        ("a@\u0260mail.com", "gmail.com", "'\u0260' for 'g', a hook"),  # ɠmail.com
    ],
)
def test_a_letter_with_a_stroke_or_hook_is_a_slip(written, meant, said):
    verdict = Guard().evaluate(written)
    # qq.com, of two letters, has many names that near it: a warning there.
    assert verdict.action in (Action.REJECT, Action.WARN), verdict
    assert verdict.suggestion == meant and said in verdict.explanation


# A small capital is its letter in another size: ᴏᴜᴛʟᴏᴏᴋ.com reads as outlook.com and goes
# elsewhere. Unicode's confusables data maps the few that look like lower case (ᴏ, ᴄ, ᴠ) and
# not the rest (ᴀ, ɢ, ʟ), so whole names in them, and ᴀol.com, were allowed.
@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("a@\u1d00ol.com", "aol.com"),  # ᴀol.com
        ("a@w\u1d07b.de", "web.de"),  # wᴇb.de
        ("a@\u0262mail.com", "gmail.com"),  # ɢmail.com: not an extra letter before mail.com
        ("a@\u028f\u1d00\u029c\u1d0f\u1d0f.com", "yahoo.com"),  # ʏᴀʜᴏᴏ.com
        ("a@\u1d0f\u1d1c\u1d1b\u029f\u1d0f\u1d0f\u1d0b.com", "outlook.com"),  # ᴏᴜᴛʟᴏᴏᴋ.com
        ("a@\ua7af\ua7af.com", "qq.com"),  # ꞯꞯ.com
    ],
)
def test_small_capitals_are_read_as_their_letters(written, meant):
    verdict = Guard().evaluate(written)
    assert verdict.action is Action.REJECT, verdict
    assert verdict.reason == "typo.confusable" and verdict.suggestion == meant


_READ_AS_LATIN = Config(domains={"protected": ["apple.com", "gmail.com", "yahoo.com"]})


# A name in letters that pass for Latin ones is judged as what its reader sees: аррӏе.co
# reads as apple.co, a slip of apple.com that typogate stops when it is typed in Latin.
@pytest.mark.parametrize(
    ("written", "seen", "meant"),
    [
        ("a@\u0430\u0440\u0440\u04cf\u0435.co", "apple.co", "apple.com"),  # аррӏе.co
        ("a@\u0430\u0440\u0440\u04cf\u0435.net", "apple.net", "apple.com"),
        ("a@\u0443\u0430\u04bb\u043e.com", "yaho.com", "yahoo.com"),  # уаһо.com
        ("a@\u0261mial.com", "gmial.com", "gmail.com"),  # a Latin script g, and a slip
        ("a@xn--80ak6aa92e.co", "apple.co", "apple.com"),  # аррӏе.co as its A-label
        ("a@\u0430\u0440\u0440\u04cf\u0451.com", "appl\u00eb.com", "apple.com"),  # a ё: accent kept
    ],
)
def test_a_name_read_as_latin_is_judged_as_it_is_read(written, seen, meant):
    verdict = Guard(_READ_AS_LATIN).evaluate(written)
    assert verdict.action is Action.REJECT, verdict
    assert verdict.reason == "typo.confusable" and verdict.suggestion == meant
    assert f"reads as {seen}" in verdict.explanation


@pytest.mark.parametrize(
    "written",
    [
        "a@\u0445\u043e\u0440.com",  # хор.com reads as xop.com: near nothing protected
        "a@\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444",  # пример.рф: not all Latin-alike
        "a@m\u00fcller.de",  # Latin letters already: it reads as itself
        "a@\u0451\u043b\u043a\u0430.com",  # ёлка.com: no Latin letter looks like л
    ],
)
def test_a_name_read_as_latin_near_nothing_is_allowed(written):
    assert Guard(_READ_AS_LATIN).evaluate(written).action is Action.ALLOW


# An l with a middle dot (the Catalan ŀ, which IDNA writes l·, a dot an l's neighbour may
# hold) reads as an l with a mark on it, as an accented letter does: gmaiŀl.com reads as
# gmaill.com, a slip of gmail.com that typogate stops in Latin. The dot made the name read as
# nothing, and it was allowed as two slips from gmail.com.
@pytest.mark.parametrize(
    ("written", "seen"),
    [
        ("a@gmai\u0140l.com", "gmaill.com"),  # gmaiŀl.com, as IDNA writes it: gmail·l.com
        ("a@gmail\u00b7l.com", "gmaill.com"),
        ("a@app\u0140le.com", "applle.com"),  # appŀle.com
    ],
)
def test_a_middle_dot_reads_as_a_mark_on_the_letter_before_it(written, seen):
    verdict = Guard(_READ_AS_LATIN).evaluate(written)
    assert verdict.action is Action.REJECT, verdict
    assert verdict.reason == "typo.confusable" and f"reads as {seen}" in verdict.explanation


def test_a_real_name_with_a_middle_dot_near_nothing_is_allowed():
    assert Guard(_READ_AS_LATIN).evaluate("a@col\u00b7legi.cat").action is Action.ALLOW


def test_a_reading_that_is_no_domain_leaves_the_verdict_alone():
    # æ reads as ae: 25 of them make a label of 80 letters, too long for a domain, though
    # the name itself (an A-label of 62) is one. It was an unreadable address.
    verdict = Guard(_READ_AS_LATIN).evaluate("a@" + "a" * 30 + "\u00e6" * 25 + ".com")
    assert verdict.action is Action.ALLOW


def test_fullwidth_letters_map_to_the_same_domain(guard):
    assert guard.evaluate("a@ａｒｍｙ.mil").reason == "allowed.protected"


def test_rules_replaced_while_running_apply_to_the_next_verdict():
    guard = Guard(Config(domains={"protected": ["army.mil"]}))
    assert guard.evaluate("a@shop.example").action is Action.ALLOW
    guard.use_rules([Rule.model_validate({"domain": "shop.example", "action": "reject"})])
    assert guard.evaluate("a@shop.example").action is Action.REJECT
    guard.use_rules([])
    assert guard.evaluate("a@shop.example").action is Action.ALLOW


def test_a_name_under_no_top_level_domain_is_warned_as_a_misdelivery():
    # cmsp4.com is written to too rarely to be known, so cmsp4.con is close to nothing:
    # it still cannot be delivered anywhere, and the sender hears so.
    verdict = Guard().evaluate("a@cmsp4.con")
    assert verdict.action is Action.WARN and verdict.reason == "typo.no_such_suffix"
    assert verdict.risk.value == "misdelivery" and verdict.suggestion is None
    # A slip of a known domain is still told as one.
    assert Guard().evaluate("a@gmail.con").suggestion == "gmail.com"
    # Names for private use are the network's own; one it routes itself takes a rule.
    for private in ("host.local", "db.internal", "x.test", "a.example", "mail.alt"):
        assert Guard().evaluate(f"a@{private}").reason == "allowed.no_likely_typo"
    allowed = Guard(Config.from_mapping({"rules": [{"domain": "corp.lan", "action": "allow"}]}))
    assert allowed.evaluate("a@mail.corp.lan").reason == "allowed.rule"
    strict = Guard(Config.from_mapping({"actions": {"misdelivery": {"possible_typo": "reject"}}}))
    assert strict.evaluate("a@prcfs.ite").action is Action.REJECT


# The .gov and .mil registries give out names in ASCII letters only: a name in other letters
# under them, and no likely slip (zñq.mil, three accents on irs.gov), was allowed as "more
# likely meant as written", a name no one can hold.
@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("\u00ed\u0155\u015b.gov", None),  # íŕś.gov
        ("\u1e31eb.gov", "feb.gov"),  # ḱeb.gov: a weaker twin is named
        ("z\u00f1q.mil", None),  # zñq.mil
        ("\u043f\u0440\u0438\u043c\u0435\u0440.mil", None),  # пример.mil
    ],
)
def test_a_name_in_letters_outside_ascii_under_gov_or_mil_is_no_ones(typed, meant):
    verdict = Guard().evaluate(f"a@{typed}")
    assert (verdict.action, verdict.reason) == (Action.WARN, "typo.no_such_name"), verdict
    assert verdict.risk.value == "misdelivery" and verdict.suggestion == meant
    assert "ASCII" in verdict.explanation and "can only bounce" in verdict.explanation


def test_names_outside_ascii_elsewhere_or_listed_are_judged_as_before():
    assert Guard().evaluate("a@b\u00fccher.de").action is Action.ALLOW  # bücher.de
    assert Guard().evaluate("a@ir\u015b.gov").reason != "typo.no_such_name"  # a likely slip
    listed = Guard(Config(domains={"protected": ["b\u00fccher.gov"]}))
    assert listed.evaluate("a@b\u00fccher.gov").reason == "allowed.protected"
    ruled = Guard(Config.from_mapping({"rules": [{"domain": "irs.gov", "action": "allow"}]}))
    assert ruled.evaluate("a@irs.gov").action is Action.ALLOW


def test_a_weak_candidate_never_makes_a_name_under_no_top_level_domain_less_suspect():
    # ab.comx was allowed ("more likely meant as written") while ab.zzz, close to nothing,
    # was warned; af.m went the same way once a cut-short suffix counted as one slip.
    guard = Guard(Config(domains={"protected": ["ab.com", "af.mil"]}))
    for typed, meant in (("ab.comx", "ab.com"), ("af.m", "af.mil")):
        verdict = guard.evaluate(f"a@{typed}")
        assert (verdict.action, verdict.reason) == (Action.WARN, "typo.no_such_suffix")
        assert verdict.suggestion == meant and f"Did you mean {meant}?" in verdict.explanation
    assert guard.evaluate("a@ab.zzz").suggestion is None


_IN_FRONT = Config(domains={"protected": ["army.mil", "gmail.com"], "known": ["partner-firm.com"]})


# A domain we protect or write to, written in full in front of a stranger's: a reader takes
# army.mil.evil.com for army.mil, and the mail goes to evil.com. It was allowed as near
# nothing, while army.mil.com, the same name under one more suffix, was stopped.
_WHOLE_IN_FRONT = [
    ("a@army.mil.evil.com", "army.mil", "army.mil", "evil.com"),
    ("a@mail.army.mil.evil.com", "mail.army.mil", "mail.army.mil", "evil.com"),  # a host
    ("a@gmail.com.login.example-mail.com.evil.buzz", "gmail.com", "gmail.com", "evil.buzz"),
    ("a@gmail.com.secure-login.net", "gmail.com", "gmail.com", "secure-login.net"),
    ("a@partner-firm.com.evil.co.uk", "partner-firm.com", "partner-firm.com", "evil.co.uk"),
    # The phisher's form: the name ends at a hyphen inside the stranger's first label.
    ("a@gmail.com-secure.net", "gmail.com", "gmail.com", "com-secure.net"),
    ("a@army.mil-login.com", "army.mil", "army.mil", "mil-login.com"),
    ("a@mail.army.mil-login.co.uk", "mail.army.mil", "mail.army.mil", "mil-login.co.uk"),
]
# And with its dot left out, or a hyphen for it: the phisher's paypal-com.evil.com.
# armymil.com and army-mil.com, the same name typed whole under a suffix, are stopped
# (typo.merged_suffix); in front of evil.com, or ending at a hyphen, they were allowed,
# read as a label of their own. No domain of the month's 153,921 has such a label.
_MERGED_IN_FRONT = [
    ("a@gmailcom.evil.com", "gmailcom, gmail.com with its dot left out", "gmail.com", "evil.com"),
    (
        "a@gmail-com.evil.com",
        "gmail-com, gmail.com with a hyphen for its dot",
        "gmail.com",
        "evil.com",
    ),
    ("a@army-mil.evil.com", "army-mil, army.mil with a hyphen for its dot", "army.mil", "evil.com"),
    (
        "a@www.army-mil.evil.com",
        "army-mil, army.mil with a hyphen for its dot",
        "army.mil",
        "evil.com",
    ),
    ("a@armymil.evil.co.uk", "armymil, army.mil with its dot left out", "army.mil", "evil.co.uk"),
    (
        "a@partner-firm-com.evil.co.uk",
        "partner-firm-com, partner-firm.com with a hyphen for its dot",
        "partner-firm.com",
        "evil.co.uk",
    ),
    (
        "a@gmail--com.evil.com",
        "gmail--com, gmail.com with a hyphen for its dot",
        "gmail.com",
        "evil.com",
    ),
    # Ending at a hyphen, as gmail.com-secure.net does: the registrable name itself.
    (
        "a@army-mil-login.com",
        "army-mil, army.mil with a hyphen for its dot",
        "army.mil",
        "army-mil-login.com",
    ),
    (
        "a@armymil-secure.com",
        "armymil, army.mil with its dot left out",
        "army.mil",
        "armymil-secure.com",
    ),
    (
        "a@gmail-com-secure.net",
        "gmail-com, gmail.com with a hyphen for its dot",
        "gmail.com",
        "gmail-com-secure.net",
    ),
]


# And after a hyphen, the phisher's secure-paypal-com.net: whole or merged, in a label's
# middle or at its end. Each was allowed; the name begins with another word, so the
# sentence says the name holds it.
_INSIDE_A_LABEL = [
    ("a@login-army.mil.evil.com", "army.mil", "army.mil", "evil.com"),
    ("a@secure-gmail.com-login.net", "gmail.com", "gmail.com", "com-login.net"),
    (
        "a@secure-army-mil.com",
        "army-mil, army.mil with a hyphen for its dot",
        "army.mil",
        "secure-army-mil.com",
    ),
    (
        "a@secure-armymil.com",
        "armymil, army.mil with its dot left out",
        "army.mil",
        "secure-armymil.com",
    ),
    (
        "a@www-army-mil.evil.com",
        "army-mil, army.mil with a hyphen for its dot",
        "army.mil",
        "evil.com",
    ),
    (
        "a@login-gmail-com.evil.com",
        "gmail-com, gmail.com with a hyphen for its dot",
        "gmail.com",
        "evil.com",
    ),
    (
        "a@my-partner-firm-com-login.net",
        "partner-firm-com, partner-firm.com with a hyphen for its dot",
        "partner-firm.com",
        "my-partner-firm-com-login.net",
    ),
]


@pytest.mark.parametrize(
    ("written", "says", "meant", "goes"),
    [(w, f"begins with {b}", m, g) for w, b, m, g in _WHOLE_IN_FRONT + _MERGED_IN_FRONT]
    + [(w, f"holds {b}", m, g) for w, b, m, g in _INSIDE_A_LABEL],
)
def test_a_name_we_know_in_front_of_another_domain_is_a_look_alike(written, says, meant, goes):
    verdict = Guard(_IN_FRONT).evaluate(written)
    assert verdict.action is Action.REJECT, verdict
    assert verdict.reason == "typo.confusable" and verdict.suggestion == meant
    assert verdict.judgement.risk is Risk.LEAK
    assert f"{says}, " in verdict.explanation
    assert f"goes to {goes}, " in verdict.explanation


# A host we write to, in front: chn.dell.com is known, dell.com is not. The name in front
# was looked up by its registrable owner alone, so chn.dell.com.evil.com was allowed.
def test_a_known_host_in_front_of_another_domain_is_a_look_alike():
    guard = Guard(Config(domains={"protected": ["army.mil"], "known": ["chn.dell.com"]}))
    verdict = guard.evaluate("a@chn.dell.com.evil.com")
    assert verdict.action is Action.REJECT, verdict
    assert verdict.reason == "typo.confusable" and verdict.suggestion == "chn.dell.com"
    assert "begins with chn.dell.com, a domain you write to" in verdict.explanation
    assert guard.evaluate("a@www.dell.com.evil.com").action is Action.ALLOW  # dell.com: no one


_SLIP_IN_FRONT = Config(
    domains={"protected": ["army.mil", "gmail.com"], "known": ["partner-firm.com", "chn.dell.com"]}
)


# A slip or a look-alike of a domain we know, in front of a stranger's: each alone is
# stopped (or warned), and each was allowed in front of evil.com, where a reader takes it
# for the name it is a slip of just as readily.
@pytest.mark.parametrize(
    ("written", "front", "meant", "action"),
    [
        ("a@gmial.com.evil.com", "gmial.com", "gmail.com", Action.REJECT),
        ("a@army.ml.evil.com", "army.ml", "army.mil", Action.REJECT),
        ("a@arrny.mil.evil.com", "arrny.mil", "army.mil", Action.REJECT),
        ("a@gmai\u0142.com.evil.net", "gmai\u0142.com", "gmail.com", Action.REJECT),
        ("a@mail.gmial.com-secure.net", "mail.gmial.com", "mail.gmail.com", Action.REJECT),
        ("a@chndell.com.evil.co.uk", "chndell.com", "chn.dell.com", Action.WARN),
        ("a@partner-frim.com.evil.com", "partner-frim.com", "partner-firm.com", Action.WARN),
        # A slip in the name with a hyphen for its dot: allowed, each.
        (
            "a@army-ml.evil.com",
            "army-ml, army.ml with a hyphen for its dot",
            "army.mil",
            Action.REJECT,
        ),
        (
            "a@gmial-com.evil.com",
            "gmial-com, gmial.com with a hyphen for its dot",
            "gmail.com",
            Action.REJECT,
        ),
        (
            "a@arrny-mil-login.com",
            "arrny-mil, arrny.mil with a hyphen for its dot",
            "army.mil",
            Action.REJECT,
        ),
        (
            "a@partner-frim-com.evil.com",
            "partner-frim-com, partner-frim.com with a hyphen for its dot",
            "partner-firm.com",
            Action.WARN,
        ),
    ],
)
def test_a_slip_in_front_of_another_domain_is_a_look_alike(written, front, meant, action):
    verdict = Guard(_SLIP_IN_FRONT).evaluate(written)
    assert verdict.action is action, verdict
    assert verdict.reason == "typo.confusable" and verdict.suggestion == meant
    assert verdict.judgement.risk is Risk.LEAK  # wherever the front would go: to evil.*
    assert f"begins with {front}, " in verdict.explanation
    assert f"Did you mean {meant}?" in verdict.explanation


@pytest.mark.parametrize(
    "written",
    [
        "a@mail.army.mil",  # under the protected domain itself
        "a@www.evil.com",  # no domain we know in front
        "a@mil.evil.com",  # a suffix alone names no one
        "a@army.evil.com",  # a name without its suffix is not army.mil
        "a@army.mill-works.com",  # army.mill is no domain we know
        "a@example.com.evil.com",  # a name of its own in front, near none we know
        "a@amy.de.evil.com",  # amy.de alone is allowed: no likely slip of army.mil
        "a@army-mill.evil.com",  # army.mill is no domain
        "a@mail-online.evil.com",  # mail.online: no one we know
        "a@com-mil.evil.com",
        "a@armymill-works.com",
        "a@mil-army.com",
        "a@my-army-works.com",  # army alone, no suffix
        "a@go-army-mill.com",
        "a@secure-mil.com",
        "a@best-e-mail.com",
        "a@amy-de.evil.com",  # amy.de: no likely slip of army.mil, in front or alone
    ],
)
def test_a_name_in_front_of_another_that_is_no_domain_we_know_is_judged_as_before(written):
    assert Guard(_IN_FRONT).evaluate(written).action is Action.ALLOW


# An address whose local part ends in an @-sign and a domain we protect: its reader takes
# "john@army.mil"@evil.com for john@army.mil, and the mail goes to evil.com. Both forms were
# allowed as mail to evil.com.
@pytest.mark.parametrize(
    ("written", "seen"),
    [
        ('"john@army.mil"@evil.com', "john@army.mil"),
        ("john@army.mil@evil.com", "john@army.mil"),  # unquoted, as Postfix hands it on
        ('"jane@mail.army.mil"@mx.evil.com', "jane@mail.army.mil"),
        ('"ana@partner-firm.com"@evil.co.uk', "ana@partner-firm.com"),
    ],
)
def test_an_address_in_the_local_part_is_read_as_the_address(written, seen):
    _assert_an_address_look_alike(
        Guard(_IN_FRONT).evaluate(written), f"begins with {seen}", meant=seen
    )


def _assert_an_address_look_alike(verdict, sentence: str, meant: str) -> None:
    """``verdict`` stops a look-alike of the address ``meant``, saying ``sentence``."""
    assert verdict.action is Action.REJECT, verdict
    assert verdict.reason == "typo.confusable" and verdict.judgement.risk is Risk.LEAK
    assert sentence in verdict.explanation
    assert f"Did you mean {meant}?" in verdict.explanation
    assert verdict.suggested_recipient is None  # not the local part at the domain it names


# And an address at a slip of a domain we know, in the local part: its reader takes it for
# the address as readily as john@gmial.com alone, which is stopped; it was allowed.
@pytest.mark.parametrize(
    ("written", "seen", "meant"),
    [
        ('"john@gmial.com"@evil.com', "john@gmial.com", "john@gmail.com"),
        ("john@arrny.mil@evil.com", "john@arrny.mil", "john@army.mil"),
    ],
)
def test_an_address_at_a_slip_in_the_local_part_is_a_look_alike(written, seen, meant):
    verdict = Guard(_IN_FRONT).evaluate(written)
    _assert_an_address_look_alike(verdict, f"begins with {seen}, a likely slip of {meant}", meant)


# The local part as a screen shows it, as a display name is read: an @-sign of another
# width, a zero-width space in the domain, an address backwards under a right-to-left
# override. Each showed john@army.mil in front of @evil.com and was allowed; what shows as
# nothing is written as its code in the explanation, which a sender's notice carries.
@pytest.mark.parametrize(
    "written",
    [
        '"john\uff20army.mil"@evil.com',
        '"john\ufe6barmy.mil"@evil.com',
        '"john@ar\u200bmy.mil"@evil.com',
        '"\u202elim.ymra@nhoj"@evil.com',
        '"john@[army.mil]"@evil.com',  # read as a display name is: brackets passed over
        '"john @ army.mil"@evil.com',  # and spaces around the @-sign
    ],
)
def test_an_address_in_the_local_part_is_read_as_it_shows(written):
    verdict = Guard(_IN_FRONT).evaluate(written)
    assert verdict.action is Action.REJECT, verdict
    assert "begins with john@army.mil, an address at army.mil" in verdict.explanation
    assert verdict.explanation.isprintable(), verdict.explanation


@pytest.mark.parametrize(
    "written",
    [
        '"john@evil.net"@evil.com',  # names no domain we know
        '"john@army.mil"@partner-firm.com',  # a correspondent's own gateway: as before
    ],
)
def test_an_address_in_the_local_part_naming_no_one_we_know_is_judged_as_before(written):
    assert Guard(_IN_FRONT).evaluate(written).action is Action.ALLOW


# A display name that is an address elsewhere: a reply to mail whose Reply-To reads
# "ceo@army.mil" <ceo@evil.com> shows its sender ceo@army.mil, and goes to evil.com. The
# milter reads the name from the To and Cc headers, typogate check from the line. Allowed.
@pytest.mark.parametrize(
    ("shown", "said", "meant"),
    [
        ("john@army.mil", "john@army.mil, an address at army.mil", "john@army.mil"),
        ("John Doe (john@army.mil)", "john@army.mil, an address at army.mil", "john@army.mil"),
        ("'john@mail.army.mil'", "john@mail.army.mil, an address at mail.army.mil", None),
        ("john@gmial.com", "john@gmial.com, a likely slip of john@gmail.com", "john@gmail.com"),
        # A symbol no domain may hold, as a reader reads it (APL alpha: a): bench/disguise.py
        ("john@\u237army.mil", "john@army.mil, an address at army.mil", "john@army.mil"),
        (
            "ana@partn\u212er-firm.com",
            "ana@partner-firm.com, an address at",
            "ana@partner-firm.com",
        ),
        # An l with a middle dot reads as an l, and a hyphen at a label's edge, which no
        # host may have, as nothing: both names read as no domain, and were allowed.
        ("john@gmai\u0140.com", "john@gmail.com, an address at gmail.com", "john@gmail.com"),
        ("john@-army.mil", "john@army.mil, an address at army.mil", "john@army.mil"),
        ("john@army-.mil", "john@army.mil, an address at army.mil", "john@army.mil"),
    ],
)
def test_a_display_name_naming_an_address_we_know_is_a_look_alike(shown, said, meant):
    verdict = Guard(_IN_FRONT).evaluate("john@evil.com", shown_as=shown)
    meant = meant or said.split(",")[0]
    _assert_an_address_look_alike(verdict, f"john@evil.com is shown as {said}", meant)


# What the reader sees on the screen, not what the header holds: a character that shows as
# nothing (a zero-width space, a soft hyphen), an @-sign of another width, a span written
# backwards under a right-to-left override, and a middle dot for the full stop. Each name
# showed ceo@army.mil, or near enough, and was allowed.
@pytest.mark.parametrize(
    "shown",
    [
        "ceo@ar\u200bmy.mil",  # a zero-width space
        "ceo@army.mil\u200b",
        "ceo@ar\u00admy.mil",  # a soft hyphen
        "ceo@\u2060army.mil",  # a word joiner
        "ceo\uff20army.mil",  # a full-width @-sign
        "ceo\ufe6barmy.mil",  # a small one
        "\u202elim.ymra@oec",  # shown right to left: ceo@army.mil
        "ceo@\u202elim.ymra\u202c",
        "ceo@army\u00b7mil",  # a middle dot for the full stop
        # What a reader's eye passes over around an address: brackets, a second @-sign,
        # the sentence's own punctuation.
        "ceo@[army.mil]",
        "ceo@@army.mil",
        "Is it ceo@army.mil?",
        "ceo@army.mil!",
        # Spaces around the @-sign, which a reader reads past as an address's.
        "ceo @ army.mil",
        "ceo@ army.mil",
        "ceo @army.mil",
        "ceo\u00a0@\u00a0army.mil",  # no-break spaces
        "ceo @ [army.mil]",
    ],
)
def test_a_display_name_is_read_as_it_shows(shown):
    verdict = Guard(_IN_FRONT).evaluate("ceo@evil.com", shown_as=shown)
    assert verdict.action is Action.REJECT, verdict
    assert "is shown as ceo@army.mil, an address at army.mil" in verdict.explanation


@pytest.mark.parametrize(
    ("recipient", "shown"),
    [
        ("john@evil.com", "John Doe"),
        ("john@evil.com", "john@evil.com"),  # the address itself, as many programs show it
        ("john@evil.com", "JOHN@Evil.Com"),
        ("john@evil.com", "john@elsewhere.net"),  # names no domain we know
        ("john@partner-firm.com", "john@army.mil"),  # a domain we write to: as before
        ("john.doe@army.mil", "john@army.mil"),
        ("john@evil.com", "john@"),
        ("john@evil.com", "John\u200b Doe"),  # shows a name, not an address
        ("john@evil.com", "\u202eeoD nhoJ"),  # shows John Doe
        ("john@evil.com", "john@\u202emoc.live\u202c"),  # shows the address itself
        ("john@evil.com", "John @ Evil.com"),
        ("john@evil.com", "Meet @ 5pm, army"),  # no address
    ],
)
def test_a_display_name_naming_no_address_we_know_elsewhere_is_judged_as_before(recipient, shown):
    assert Guard(_IN_FRONT).evaluate(recipient, shown_as=shown).action is Action.ALLOW


# A domain known from deliveries alone does not lift it. Beside the milter, the policy
# service learns at RCPT, before the milter reads the headers and removes the recipient:
# the third reply to a forged Reply-To made evil.com a correspondent, and went out.
# A reply from it (a correspondent writes back) is proof; and so in the local part.
def test_a_domain_known_from_deliveries_alone_does_not_lift_an_address_look_alike():
    guard, sender = Guard(_IN_FRONT), "alice@example.org"
    for _ in range(5):
        guard.observe(sender, "evil.com", Evidence.SENT)
    assert guard.evaluate("ceo@evil.com", sender, vouched=True).action is Action.ALLOW
    shown = guard.evaluate("ceo@evil.com", sender, vouched=True, shown_as="ceo@army.mil")
    assert shown.action is Action.REJECT, shown
    assert "is shown as ceo@army.mil" in shown.explanation
    local = guard.evaluate('"ceo@army.mil"@evil.com', sender, vouched=True)
    assert local.action is Action.REJECT, local
    guard.observe(sender, "evil.com", Evidence.RECEIVED)
    lifted = guard.evaluate("ceo@evil.com", sender, vouched=True, shown_as="ceo@army.mil")
    assert lifted.action is Action.ALLOW, lifted


def test_an_allow_rule_for_where_the_mail_goes_lifts_a_display_name_look_alike():
    # A contact saved under another address of theirs: the admin's word for the domain.
    guard = Guard(_IN_FRONT)
    assert guard.evaluate("bob@bobsmith.net", shown_as="bob@army.mil").action is Action.REJECT
    guard.use_rules([Rule.model_validate({"domain": "bobsmith.net", "action": "allow"})])
    verdict = guard.evaluate("bob@bobsmith.net", shown_as="bob@army.mil")
    assert verdict.action is Action.ALLOW and verdict.reason == "allowed.rule"


# A character that Unicode's confusables data reads as a full stop, and that a label may
# hold (the Lisu tone letter ꓸ, the Persian zero ۰): armyꓸmil.evil.com reads as
# army.mil.evil.com, one label in front of evil.com. They were allowed as near nothing.
@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("a@army\ua4f8mil.evil.com", "army.mil"),
        ("a@gmail\ua4f8com.evil.net", "gmail.com"),
        ("a@army\u06f0mil.evil.com", "army.mil"),
    ],
)
def test_a_dot_look_alike_is_read_as_a_dot(written, meant):
    verdict = Guard(_IN_FRONT).evaluate(written)
    assert verdict.action is Action.REJECT, verdict
    assert verdict.reason == "typo.confusable" and verdict.suggestion == meant


# Two tricks at once: a capital I in the name in front. aoI.com.evil.com reads as
# aol.com.evil.com and goes to aoi.com.evil.com; it was allowed, as the reading was no
# domain we know itself.
def test_a_capital_i_in_the_name_in_front_is_read_as_it_reads():
    guard = Guard(Config(domains={"protected": ["aol.com", "mail.com"]}))
    verdict = guard.evaluate("a@aoI.com.evil.com")
    assert verdict.action is Action.REJECT, verdict
    assert verdict.reason == "typo.confusable" and verdict.suggestion == "aol.com"
    assert "aoI.com.evil.com begins with aol.com" in verdict.explanation
    # What reads as no domain we know in front stays allowed: Iibrary.com reads as library.com.
    assert guard.evaluate("a@Iibrary.com.evil.com").action is Action.ALLOW
