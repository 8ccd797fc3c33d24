"""What the monitor found in the DNS feeds the decision: a look-alike with a mail server is
acted on sooner, one where mail can only bounce is a misdelivery."""

from __future__ import annotations

from typogate import Action, Config, Guard
from typogate.vocabulary import MailState, Risk


def guard() -> Guard:
    protected = ["army.mil", "gmail.com", "northwind.io"]
    return Guard(Config.from_mapping({"domains": {"protected": protected}}))


def test_a_look_alike_with_a_mail_server_is_acted_on_a_step_sooner():
    gate = guard()
    # A real .co domain is likelier meant as written than a slip for northwind.io...
    assert gate.evaluate("a@northwind.co").action is Action.ALLOW
    gate.use_mail_states({"northwind.co": MailState.MX})
    # ...until the monitor finds that it takes mail: then whatever is sent there is read.
    live = gate.evaluate("a@northwind.co")
    assert live.action is Action.WARN and live.reason == "typo.live_lookalike"
    assert live.risk is Risk.LEAK and "has a mail server" in live.explanation
    gate.use_mail_states({"northwind.co": MailState.A_ONLY})  # the implicit MX rule
    assert gate.evaluate("a@northwind.co").action is Action.WARN


def test_a_look_alike_where_mail_can_only_bounce_is_a_misdelivery():
    gate = guard()
    assert gate.evaluate("a@gmail.co").risk is Risk.LEAK
    for state in (MailState.NXDOMAIN, MailState.NULL_MX, MailState.NO_MAIL):
        gate.use_mail_states({"gmail.co": state})
        verdict = gate.evaluate("a@gmail.co")
        assert verdict.action is Action.REJECT and verdict.risk is Risk.MISDELIVERY
