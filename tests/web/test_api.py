"""The REST API and the access rules, against the real server: sign-in everywhere but
/health, roles, CSRF on every change, rules that reach the running policy service."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from mta import policy_answer, swaks

pytestmark = pytest.mark.postfix


def test_anonymous_requests_are_refused_everywhere_but_health(site):
    spec = site.client().get("/openapi.json").json()
    anonymous = httpx.Client(base_url=site.url, timeout=30)
    checked = 0
    for path, operations in spec["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        for method in operations:
            answer = anonymous.request(method, concrete, json={})
            if path in ("/health", "/api/session") and method in ("get", "post"):
                continue
            assert answer.status_code == 401, (method, path, answer.status_code)
            checked += 1
    assert checked >= 12
    for path in ["/", "/holds", "/events", "/rules", "/correspondents", "/openapi.json"]:
        answer = anonymous.get(path)
        assert answer.status_code in (303, 401), path
        if answer.status_code == 303:
            assert answer.headers["location"].startswith("/login?next=")
    for path in ["/holds/1/release", "/holds/1/delete", "/rules", "/rules/1/delete", "/logout"]:
        assert anonymous.post(path, data={"csrf_token": "x"}).status_code == 303, path
    assert anonymous.get("/metrics").status_code == 401
    health = anonymous.get("/health")
    assert health.status_code == 200 and health.json()["store"] == "ok"
    assert (
        anonymous.post(
            "/api/session", json={"username": "admin", "password": "wrong-wrong"}
        ).status_code
        == 401
    )


def test_changes_need_the_csrf_token(site):
    admin = site.client()
    rule = {"suffix": "csrf-test", "action": "reject"}
    assert admin.post("/api/rules", json=rule).status_code == 403
    assert admin.post("/api/rules", json=rule, headers={"X-CSRF-Token": "guess"}).status_code == 403
    stored = admin.get("/api/rules").json()["stored"]
    assert all(rule["suffix"] != "csrf-test" for rule in stored)
    # The login form is protected too (login CSRF): no form token, no sign-in.
    login = httpx.post(
        site.url + "/login", data={"username": "admin", "password": site.admin_password}
    )
    assert login.status_code == 403


def test_rules_written_through_the_api_reach_the_running_policy_service(site):
    admin = site.client()
    csrf = {"X-CSRF-Token": admin.csrf_token}
    assert policy_answer(site.policy_port, "kim@shop.zz-test.com").startswith("action=DUNNO")
    bad = admin.post(
        "/api/rules", json={"suffix": "not a suffix!", "action": "reject"}, headers=csrf
    )
    assert bad.status_code == 422
    added = admin.post(
        "/api/rules",
        json={
            "domain": "zz-test.com",
            "action": "reject",
            "exceptions": ["ok.zz-test.com"],
            "message": "zz-test.com is not ours",
        },
        headers=csrf,
    )
    assert added.status_code == 201, added.text
    rule_id = added.json()["id"]
    assert "zz-test.com is not ours" in policy_answer(site.policy_port, "kim@shop.zz-test.com")
    assert policy_answer(site.policy_port, "kim@ok.zz-test.com").startswith("action=DUNNO")
    changed = admin.put(
        f"/api/rules/{rule_id}", json={"domain": "zz-test.com", "action": "allow"}, headers=csrf
    )
    assert changed.status_code == 200 and changed.json()["author"] == "admin"
    assert policy_answer(site.policy_port, "kim@shop.zz-test.com").startswith("action=DUNNO")
    assert admin.delete(f"/api/rules/{rule_id}", headers=csrf).status_code == 204
    assert admin.delete(f"/api/rules/{rule_id}", headers=csrf).status_code == 404


def test_viewers_read_but_do_not_act(site):
    made = site.cli(
        "users", "add", "vera", "--role", "viewer", "--password-stdin", stdin="viewer-password-1\n"
    )
    assert made.returncode == 0, made.stderr
    listed = site.cli("users", "list")
    assert "vera" in listed.stdout and "viewer" in listed.stdout, listed.stderr
    hold = site.hold("val@navy.ml")
    viewer = site.client("vera", "viewer-password-1")
    assert viewer.role == "viewer"
    held = viewer.get("/api/holds").json()
    assert hold["hold_id"] in [h["hold_id"] for h in held]
    csrf = {"X-CSRF-Token": viewer.csrf_token}
    refused = viewer.post(f"/api/holds/{hold['hold_id']}/release", json={}, headers=csrf)
    assert refused.status_code == 403
    assert (
        viewer.post(
            "/api/rules", json={"suffix": "zz", "action": "reject"}, headers=csrf
        ).status_code
        == 403
    )
    assert site.state(hold["hold_id"]) == "held"
    # An admin can; deleting needs confirm=true, releasing twice is harmless.
    admin = site.client()
    csrf = {"X-CSRF-Token": admin.csrf_token}
    unconfirmed = admin.post(f"/api/holds/{hold['hold_id']}/delete", json={}, headers=csrf)
    assert unconfirmed.status_code == 409
    first = admin.post(f"/api/holds/{hold['hold_id']}/release", json={"why": "meant"}, headers=csrf)
    assert first.status_code == 200 and first.json()["state"] == "released"
    again = admin.post(f"/api/holds/{hold['hold_id']}/release", json={}, headers=csrf)
    assert again.status_code == 200 and "already released" in again.json()["message"]
    assert admin.post("/api/holds/no-such/release", json={}, headers=csrf).status_code == 404


def test_events_stats_metrics_and_sign_out(site):
    site.hold("eve@army.ml")
    admin = site.client()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # events are written in batches, once a second
        query = {"action": "hold", "domain": "army.ml", "limit": 5}
        events = admin.get("/api/events", params=query).json()
        if events:  # this hold's own event: an earlier test's holds may be there already
            break
        time.sleep(0.2)
    assert events and all(e["action"] == "hold" and e["domain"] == "army.ml" for e in events)
    stats = admin.get("/api/stats", params={"days": 7}).json()
    assert len(stats["by_day"]) == 7 and stats["by_day"][-1]["hold"] >= 1
    assert "army.ml" in [d["domain"] for d in stats["top_domains"]]
    metrics = admin.get("/metrics").text
    assert re.search(r'typogate_verdicts_total\{action="hold"\} [1-9]', metrics)
    assert "typogate_store_up 1.0" in metrics
    assert "typogate_monitor_last_run" not in metrics  # the monitor never ran on this store
    check = admin.get("/api/check", params={"recipient": "x@navy.ml"}).json()
    assert check["suggestion"] == "navy.mil"
    quoted = admin.get("/api/check", params={"recipient": '"x y"@navy.ml'}).json()
    assert (quoted["recipient"], quoted["suggested_recipient"]) == (
        '"x y"@navy.ml',
        '"x y"@navy.mil',
    )
    assert admin.get("/api/check", params={"recipient": "not an address"}).status_code == 422
    # As a mail program's add-in asks, with the name it shows the recipient under.
    shown = {"recipient": "john@evil.com", "shown_as": "john@navy.mil"}
    shown_check = admin.get("/api/check", params=shown).json()
    assert (
        shown_check["action"] != "allow"
        and "is shown as john@navy.mil" in shown_check["explanation"]
    )
    assert (
        admin.delete("/api/session", headers={"X-CSRF-Token": admin.csrf_token}).status_code == 204
    )
    assert admin.get("/api/events").status_code == 401  # the session ended on the server


def test_the_api_writes_each_address_as_its_sender_writes_it(site):
    """Before: /api/events and /api/holds gave the names the store keeps, unquoted as
    Postfix hands them to the policy service: `bob<carol@example.org`, which names
    carol@example.org to any program that reads it, and `john doe@army.ml`, which no mail
    program takes. /api/check and the pages already wrote them quoted."""
    sender, recipient = '"bob<carol"@example.org', '"john doe"@army.ml'
    sent = swaks(site.postfix.smtpd_port, sender, [recipient], "body")
    assert "250 2.0.0 Ok: queued" in sent.stdout, sent.stdout
    admin = site.client()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # events are written in batches, once a second
        events = admin.get("/api/events", params={"domain": "army.ml", "limit": 1000}).json()
        mine = [e for e in events if "john doe" in e["recipient"]]
        if mine:
            break
        time.sleep(0.2)
    assert [(e["recipient"], e["sender"]) for e in mine] == [(recipient, sender)], mine
    held = [h for h in admin.get("/api/holds").json() if "john doe" in h["recipients"][0]]
    assert [(h["sender"], h["recipients"]) for h in held] == [(sender, [recipient])], held
    top = admin.get("/api/stats", params={"days": 1}).json()["top_senders"]
    assert sender in [s["sender"] for s in top] and "bob<carol@example.org" not in str(top)


def test_a_stranger_cannot_grow_the_metrics_without_bound(site):
    """Before: the request counter took its method label from whatever a client sent, and
    the server takes any token as a method. Each unknown word (no sign-in needed) made a
    new series for good: memory and /metrics grew with every one (the cardinality flaw of
    CVE-2023-45142). Now a method HTTP does not define counts as "other"."""
    words = [f"PROBE{n}" for n in range(40)]
    with httpx.Client(base_url=site.url, timeout=30) as stranger:
        for word in words:
            assert stranger.request(word, "/health").status_code >= 400
    metrics = site.client().get("/metrics").text
    methods = set(re.findall(r'typogate_http_requests_total\{method="([^"]*)"', metrics))
    assert not methods & set(words), sorted(methods)
    assert "other" in methods and "POST" in methods, sorted(methods)  # the sign-in's


def test_text_that_is_not_unicode_is_refused_in_words(site):
    """Before: JSON may write a lone surrogate ("\\ud800"), which Python reads and no
    database driver writes: a sign-in with it (no account needed), a rule's message or a
    release's reason ended in "500 Internal Server Error" and a traceback in the log. Now
    each is refused 422, saying why, and nothing is stored."""
    raw = {"Content-Type": "application/json"}
    anonymous = httpx.Client(base_url=site.url, timeout=30)
    signed_in = anonymous.post(
        "/api/session", content=b'{"username": "\\ud800", "password": "x"}', headers=raw
    )
    admin = site.client()
    csrf = {**raw, "X-CSRF-Token": admin.csrf_token}
    rule = b'{"domain": "zz-odd.com", "action": "reject", "message": "a\\ud800b"}'
    added = admin.post("/api/rules", content=rule, headers=csrf)
    hold = site.hold("odd@navy.ml")
    released = admin.post(
        f"/api/holds/{hold['hold_id']}/release", content=b'{"why": "x\\udcffy"}', headers=csrf
    )
    for answer in (signed_in, added, released):
        assert answer.status_code == 422, (answer.status_code, answer.text)
        assert "not Unicode text" in answer.text, answer.text
    assert site.state(hold["hold_id"]) == "held"
    stored = admin.get("/api/rules").json()["stored"]
    assert not [r for r in stored if r["domain"] == "zz-odd.com"]
    assert "UnicodeEncodeError" not in site.server.log


def test_a_nul_or_a_row_id_past_64_bits_is_refused_in_words(site):
    """Before, on SQLite: a rule whose message held a NUL (``"\\u0000"``) was stored, where
    PostgreSQL refuses it, so one API behaved two ways; a row id past 64 bits (a page on,
    a rule to change or remove) ended in "500 Internal Server Error" (SQLite cannot take
    the integer). Now each is refused 422, on every store, saying why."""
    admin = site.client()
    csrf = {"X-CSRF-Token": admin.csrf_token}
    rule = {"domain": "zz-nul.com", "action": "reject", "message": "a\x00b"}
    answers = {
        "rule": admin.post("/api/rules", json=rule, headers=csrf),
        "page on": admin.get("/api/events", params={"before": 2**70}),
        "change": admin.put(
            f"/api/rules/{2**70}", json={"domain": "a.com", "action": "warn"}, headers=csrf
        ),
        "remove": admin.delete(f"/api/rules/{2**70}", headers=csrf),
    }
    for what, answer in answers.items():
        assert answer.status_code == 422, (what, answer.status_code, answer.text)
    assert "NUL" in answers["rule"].text
    stored = admin.get("/api/rules").json()["stored"]
    assert not [r for r in stored if r["domain"] == "zz-nul.com"]


def test_a_nul_in_a_form_is_refused_in_words_on_every_store(site):
    """Before, on SQLite: a NUL in a page's form (a release's reason, a rule's message)
    was stored, where PostgreSQL refuses it (422 in the driver's words), so one page
    behaved two ways, and a NUL went on into the hold's trail. Now the form is refused
    422, naming the field, before anything is stored, on every store (as the API is)."""
    admin = site.client()
    hold = site.hold("formnul@navy.ml")
    token = admin.csrf_token
    released = admin.post(
        f"/holds/{hold['hold_id']}/release", data={"csrf_token": token, "why": "a\x00b"}
    )
    rule = {"csrf_token": token, "kind": "domain", "target": "zz-formnul.com",
            "action": "reject", "message": "a\x00b"}  # fmt: skip
    added = admin.post("/rules", data=rule)
    for answer in (released, added):
        assert answer.status_code == 422, (answer.status_code, answer.text)
        assert "NUL" in answer.text, answer.text
    assert "why" in released.text and "message" in added.text
    assert site.state(hold["hold_id"]) == "held"
    stored = admin.get("/api/rules").json()["stored"]
    assert not [r for r in stored if r["domain"] == "zz-formnul.com"]
