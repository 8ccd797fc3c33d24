"""The rules page and API refuse rules that would not do what they say, in the same words,
and a rule's own message is what the sender reads in the real Postfix's 550 reply."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime

import pytest
from mta import policy_answer, swaks
from playwright.sync_api import expect
from postfix_lines import mail_log
from sqlalchemy.orm import Session
from web_client import sign_in_page

from typogate.store import Store
from typogate.store.models import RuleRow

pytestmark = pytest.mark.postfix
ML_MESSAGE = "Mail to .ml is blocked: did you mean .mil?"


def stored_targets(site) -> set[str]:
    return {r["suffix"] or r["domain"] for r in site.client().get("/api/rules").json()["stored"]}


def allow_for_sender(page, row, domain: str, sender: str):
    """Follow ``row``'s *allow for sender…* link: the new-rule form, filled in for that
    sender and domain (returned)."""
    row.get_by_role("link", name="allow for sender…").click()
    new = page.locator("form.new-rule")
    expect(new.get_by_label("Suffix or domain")).to_have_value(domain)
    expect(new.get_by_label("Action")).to_have_value("allow")
    expect(new.get_by_label("Only for senders")).to_have_value(sender)
    return new


def test_the_add_form_asks_instead_of_defaulting_and_refuses_a_domain_as_a_suffix(site, page):
    """Before: the form defaulted to suffix + allow with placeholders for labels, so a domain
    typed into it was saved as an allow rule for its subdomains."""
    sign_in_page(page, site.url, site.admin_password, "/rules")
    new = page.locator("form.new-rule")
    for label in ("Suffix or domain", "Action", "Message to the sender"):
        expect(new.get_by_label(label)).to_be_visible()
    expect(new.get_by_label("every domain under a suffix")).not_to_be_checked()
    expect(new.get_by_label("one domain and its subdomains")).not_to_be_checked()
    expect(new.get_by_label("Action")).to_have_value("")
    new.get_by_label("Suffix or domain").fill("partner-form.ml")
    new.get_by_role("button", name="Add").click()  # nothing chosen: the browser asks
    assert new.evaluate("form => form.checkValidity()") is False
    expect(page).to_have_url(re.compile(r"/rules$"))
    assert "partner-form.ml" not in stored_targets(site)
    new.get_by_label("every domain under a suffix").check()
    new.get_by_label("Action").select_option("allow")
    new.get_by_role("button", name="Add").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "'partner-form.ml' is not a public suffix (such as ml or co.uk); "
        "for one domain and its subdomains, write a domain rule"
    )
    assert "partner-form.ml" not in stored_targets(site)


@pytest.mark.parametrize("suffix", ["com.", "xx-not-a-suffix", "gmial.com"])
def test_suffixes_off_the_public_suffix_list_are_a_422_in_the_pages_words(site, page, suffix):
    admin = site.client()
    answer = admin.post(
        "/api/rules",
        json={"suffix": suffix, "action": "reject"},
        headers={"X-CSRF-Token": admin.csrf_token},
    )
    assert answer.status_code == 422 and answer.json()["detail"].startswith("suffix: ")
    sign_in_page(page, site.url, site.admin_password, "/rules")
    new = page.locator("form.new-rule")
    new.get_by_label("every domain under a suffix").check()
    new.get_by_label("Suffix or domain").fill(suffix)
    new.get_by_label("Action").select_option("reject")
    new.get_by_role("button", name="Add").click()
    expect(page.get_by_role("alert")).to_have_text(answer.json()["detail"])
    assert suffix.rstrip(".") not in stored_targets(site)


def test_a_rules_message_reaches_the_sender_once_in_the_550_reply(site, page):
    """Before: the 550 reply had typogate's own sentence, not the rule's message."""
    sign_in_page(page, site.url, site.admin_password, "/rules")
    new = page.locator("form.new-rule")
    new.get_by_label("every domain under a suffix").check()
    new.get_by_label("Suffix or domain").fill("ml")
    new.get_by_label("Action").select_option("reject")
    new.get_by_label("Message to the sender").fill(ML_MESSAGE)
    new.get_by_role("button", name="Add").click()
    stored = page.locator("table.stored tr", has=page.locator("input[name=target][value='ml']"))
    try:
        expect(stored).to_contain_text("admin")
        result = swaks(site.postfix.smtpd_port, "alice@example.org", ["john@army.ml"])
        reply = next(line for line in result.stdout.splitlines() if " 550 " in line)
        assert "550 5.7.1 " in reply and f"rejected: {ML_MESSAGE} If army.ml is right" in reply
        assert reply.lower().count("did you mean") == 1, reply
        check = site.client().get("/api/check", params={"recipient": "john@army.ml"}).json()
        assert (check["explanation"], check["suggestion"]) == (ML_MESSAGE, "army.mil")
    finally:
        stored.get_by_role("button", name="Remove").click()
        expect(page.locator("input[name=target][value='ml']")).to_have_count(0)


def test_a_rule_stored_before_the_checks_is_shown_with_why_and_not_used(site, page):
    """A rule an older typogate stored (a reject on the "suffix" gmial.com) is listed with
    the reason it is not used, and is not used, instead of breaking the rules page."""
    store = Store(site.db, writer=False)
    try:
        with Session(store.engine) as session, session.begin():
            row = RuleRow(
                suffix="gmial.com",
                domain=None,
                action="reject",
                exceptions=json.dumps([]),
                message=None,
                author="admin",
                updated=datetime.now(UTC),
            )
            session.add(row)
            session.flush()
            rule_id = row.id
    finally:
        store.close()
    sign_in_page(page, site.url, site.admin_password, "/rules")
    row = page.locator(f"#rule-{rule_id}")
    try:
        expect(row.get_by_role("alert")).to_contain_text(
            "Not used: suffix: 'gmial.com' is not a public suffix"
        )
        listed = {r["id"]: r for r in site.client().get("/api/rules").json()["stored"]}
        assert "is not a public suffix" in listed[rule_id]["problem"]
        time.sleep(3)  # the running policy service re-reads the rules every 2 s
        assert policy_answer(site.policy_port, "kim@x.gmial.com").startswith("action=DUNNO")
    finally:
        row.get_by_role("button", name="Remove").click()
        expect(page.locator(f"#rule-{rule_id}")).to_have_count(0)


def test_a_caught_domain_is_allowed_from_the_dashboard_with_the_rule_filled_in(site, page):
    """Before: the dashboard listed the top suspected typo domains, and allowing one that the
    organisation writes to on purpose meant typing it into the rules page by hand, a rule
    at a time through the first week's review. Each now links to the form, filled in: a
    rule for that one domain that allows it, which the admin still adds."""
    site.hold("pat@navy.il")
    site.wait_caught("navy.il")
    sign_in_page(page, site.url, site.admin_password, "/")
    row = page.locator(".top-domains tbody tr", has_text="navy.il")
    row.get_by_role("link", name="allow…").click()
    new = page.locator("form.new-rule")
    expect(new.get_by_label("one domain and its subdomains")).to_be_checked()
    expect(new.get_by_label("Suffix or domain")).to_have_value("navy.il")
    expect(new.get_by_label("Action")).to_have_value("allow")
    assert "navy.il" not in stored_targets(site)  # nothing is stored until Add
    new.get_by_role("button", name="Add").click()
    stored = page.locator(
        "table.stored tr", has=page.locator("input[name=target][value='navy.il']")
    )
    try:
        expect(stored).to_contain_text("admin")
        check = site.client().get("/api/check", params={"recipient": "pat@navy.il"}).json()
        assert (check["action"], check["reason"]) == ("allow", "allowed.rule")
    finally:
        stored.get_by_role("button", name="Remove").click()
        expect(page.locator("input[name=target][value='navy.il']")).to_have_count(0)


def test_a_viewer_sees_no_allow_link_and_no_form(site, page):
    site.hold("lee@army.il")
    site.wait_caught("army.il")
    added = site.cli(
        "users", "add", "vic", "--role", "viewer", "--password-stdin", stdin="vic-pass-12345\n"
    )
    assert added.returncode == 0, added.stderr
    sign_in_page(page, site.url, "vic-pass-12345", "/", username="vic")
    expect(page.locator(".top-domains")).to_contain_text("army.il")
    expect(page.get_by_role("link", name="allow…")).to_have_count(0)
    page.goto(site.url + "/rules?domain=army.il&action=allow")
    expect(page.locator("form.new-rule")).to_have_count(0)


def test_an_alert_is_allowed_for_its_sender_alone_from_the_events_page(site, page):
    """Before: a rule was for every sender, so one sender's real correspondent beside a
    protected domain could only be allowed with everyone's slips to it. Each alert on the
    events page now links to an allow rule for its sender and domain, filled in; then the
    policy service lets that sender's mail through (signed in), and no one else's."""

    def asked(sender: str, **signed_in: str) -> str:
        return policy_answer(site.policy_port, "jo@examp1e.org", sender, **signed_in)

    assert "DUNNO" not in asked("ann@example.org", sasl_username="ann")
    site.wait_caught("examp1e.org")
    sign_in_page(page, site.url, site.admin_password, "/events?domain=examp1e.org")
    row = page.locator("table.events tbody tr", has_text="ann@example.org").first
    new = allow_for_sender(page, row, "examp1e.org", "ann@example.org")
    new.get_by_role("button", name="Add").click()
    stored = page.locator(
        "table.stored tr", has=page.locator("input[name=target][value='examp1e.org']")
    )
    try:
        expect(stored).to_contain_text("admin")
        deadline = time.monotonic() + 10  # the policy service reads the rules every 2 s
        while "DUNNO" not in (answer := asked("ann@example.org", sasl_username="ann")):
            assert time.monotonic() < deadline, answer
            time.sleep(0.2)
        assert "DUNNO" not in asked("bob@example.org", sasl_username="bob")
        assert "DUNNO" not in asked("ann@example.org")  # not signed in: anyone can claim her
    finally:
        stored.get_by_role("button", name="Remove").click()
        expect(page.locator("input[name=target][value='examp1e.org']")).to_have_count(0)


def test_the_api_keeps_a_rules_senders_and_refuses_a_block_for_some(site):
    admin = site.client()
    csrf = {"X-CSRF-Token": admin.csrf_token}
    refused = admin.post(
        "/api/rules",
        json={"domain": "examp1e.net", "action": "reject", "senders": ["ann@example.org"]},
        headers=csrf,
    )
    assert refused.status_code == 422
    assert refused.json()["detail"].startswith("senders: a rule for some senders only allows")
    added = admin.post(
        "/api/rules",
        json={"domain": "examp1e.net", "action": "allow", "senders": ["Ann@Example.org"]},
        headers=csrf,
    )
    assert added.status_code == 201, added.text
    try:
        assert added.json()["senders"] == ["ann@example.org"]
        listed = [
            r for r in admin.get("/api/rules").json()["stored"] if r["id"] == added.json()["id"]
        ]
        assert listed[0]["senders"] == ["ann@example.org"]
    finally:
        assert admin.delete(f"/api/rules/{added.json()['id']}", headers=csrf).status_code == 204


def test_alerts_are_listed_by_sender_and_domain_each_a_rule_away(site, page):
    """Before: the dashboard gave the top domains and the top senders apart, and the first
    week's review is by pair (one sender's real correspondent, alerted again and again).
    /pairs (reached from the dashboard) and /api/pairs list each pair, with how often it
    was caught and, on the page, a link to an allow rule for that sender alone."""
    for _ in range(2):
        answer = policy_answer(site.policy_port, "jo@exampel.org", "kim@example.org")
        assert "DUNNO" not in answer
    api, deadline = site.client(), time.monotonic() + 20  # counted in batches, each second
    while True:
        pairs = api.get("/api/pairs").json()
        pair = next((p for p in pairs if p["domain"] == "exampel.org"), {"count": 0})
        if pair["count"] == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert (pair.get("sender"), pair.get("suggestion"), pair["count"]) == (
        "kim@example.org",
        "example.org",
        2,
    )
    sign_in_page(page, site.url, site.admin_password, "/")
    page.get_by_role("link", name="Caught by sender and domain").click()
    row = page.locator(".top-pairs tbody tr", has_text="exampel.org")
    expect(row).to_contain_text("kim@example.org")
    allow_for_sender(page, row, "exampel.org", "kim@example.org")


def test_what_learn_refused_is_listed_with_its_senders_each_a_rule_away(site, page, tmp_path):
    """Before: the table of what `typogate learn` refused was printed once, on the console,
    without its senders, though most of a first month's false alarms are on it and an
    allow rule is best given to the senders who meant the domain. Now /pairs and
    /api/refused list each domain with each sender who wrote there, an allow rule for
    that sender away; a pair the Guard no longer questions leaves the list."""
    log = tmp_path / "mail.log"
    log.write_text(
        mail_log([("lee@example.org", "ops@arrny.mil", 2), ("max@example.org", "x@arrny.mil", 1)])
    )
    learned = site.cli("learn", str(log), "--config", str(site.config), "--json")
    assert learned.returncode == 0, learned.stderr
    api = site.client()
    deadline = time.monotonic() + 20  # the running gateway takes the new relationships in
    while True:
        listed = api.get("/api/refused").json()
        mine = [(r["domain"], r["sender"], r["deliveries"]) for r in listed]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert mine == [("arrny.mil", "lee@example.org", 2), ("arrny.mil", "max@example.org", 1)]
    assert listed[0]["suggestion"] == "army.mil"
    sign_in_page(page, site.url, site.admin_password, "/pairs")
    row = page.locator("table.refused tbody tr", has_text="lee@example.org")
    expect(row).to_contain_text("arrny.mil")
    allow_for_sender(page, row, "arrny.mil", "lee@example.org")
    added = api.post(
        "/api/rules",
        json={"domain": "arrny.mil", "action": "allow", "senders": ["lee@example.org"]},
        headers={"X-CSRF-Token": api.csrf_token},
    )
    assert added.status_code == 201, added.text
    try:
        left = [(r["domain"], r["sender"]) for r in api.get("/api/refused").json()]
        assert left == [("arrny.mil", "max@example.org")]  # lee was asked; max still to ask
        first = api.get("/api/refused", params={"limit": 1}).json()
        assert [r["sender"] for r in first] == ["max@example.org"]  # the first still asked
    finally:
        api.delete(f"/api/rules/{added.json()['id']}", headers={"X-CSRF-Token": api.csrf_token})
