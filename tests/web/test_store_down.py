"""The web part with its PostgreSQL store stopped: /health says so (503), pages and the API
answer 503 instead of failing, and everything works again once the store is back; and a
value PostgreSQL refuses is never taken for a store that is down."""

from __future__ import annotations

import time

import httpx
import pytest
from mta import Server
from ports import free_port
from web_client import ApiClient, first_admin_password

from typogate.gateway.quarantine import Quarantine
from typogate.store import HeldMessage, Store
from typogate.vocabulary import HoldSource

pytestmark = pytest.mark.postgres


def web_on(postgres, tmp_path, *more: str) -> Server:
    """A ``typogate web`` on ``postgres``'s store (not started yet)."""
    port = free_port()
    args = ["web", "--listen", f"127.0.0.1:{port}", "--db", postgres.url, *more]
    return Server(args, port, tmp_path / "web.log")


def test_dead_store_is_reported_and_survived(tmp_path, postgres):
    web = web_on(postgres, tmp_path)
    try:
        web.start()
        client = ApiClient(f"http://127.0.0.1:{web.port}", "admin", first_admin_password(web.log))
        assert client.get("/health").status_code == 200
        postgres.stop()
        health = client.get("/health")
        assert health.status_code == 503 and health.json()["store"] == "unreachable"
        api = client.get("/api/stats")
        assert api.status_code == 503 and "unreachable" in api.json()["detail"]
        page = client.get("/")
        assert page.status_code == 503 and "unreachable" in page.text
        postgres.start()
        deadline = time.monotonic() + 30
        while client.get("/health").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert client.get("/api/stats").status_code == 200  # the session survived
    finally:
        web.stop()


def test_a_nul_in_a_held_messages_subject_leaves_the_release_page_working(tmp_path, postgres):
    """Before: a Subject with an encoded NUL (``=?utf-8?q?a=00b?=``, which anyone may
    write) was read for the sender's release page and written to the hold; PostgreSQL
    refuses a NUL in text, and the page answered "503 the store is unreachable" each time,
    so the sender could never release the message. Now the NUL is kept as U+FFFD."""
    message = tmp_path / "held.eml"
    message.write_bytes(
        b"From: carol@example.org\r\nTo: ann@army.ml\r\n"
        b"Subject: =?utf-8?q?Board=00minutes?=\r\n\r\nfigures\r\n"
    )
    secret = "a release-link secret of the test's own"
    config = tmp_path / "typogate.toml"
    config.write_text(f'[release]\nsecret = "{secret}"\n')
    store = Store(postgres.url, writer=False)
    store.hold(
        HeldMessage(
            "h-nul",
            HoldSource.MILTER_QUARANTINE,
            "carol@example.org",
            ("ann@army.ml",),
            ("typo.suffix",),
            ("army.mil",),
            message_path=str(message),
        )
    )
    web = web_on(postgres, tmp_path, "--config", str(config))
    link = Quarantine(store.holds, secret=secret).release_link(
        "h-nul", f"http://127.0.0.1:{web.port}"
    )
    try:
        web.start()
        page = httpx.get(link, timeout=30)
        assert page.status_code == 200, page.text
        assert "Board\ufffdminutes" in page.text
        assert store.holds.get("h-nul").subject == "Board\ufffdminutes"
    finally:
        web.stop()
        store.close()
    assert "unreachable" not in web.log


def test_a_value_postgresql_refuses_is_the_requests_fault_not_an_outage(tmp_path, postgres):
    """Before: a NUL in a query (``/api/events?domain=a%00b``) or a JSON body, or a row id
    past 64 bits, made PostgreSQL refuse the statement, and the web part answered "503 the
    store is unreachable; try again in a minute" and logged an outage. Now: 422, saying
    what is wrong, and nothing is stored."""
    web = web_on(postgres, tmp_path)
    try:
        web.start()
        client = ApiClient(f"http://127.0.0.1:{web.port}", "admin", first_admin_password(web.log))
        csrf = {"X-CSRF-Token": client.csrf_token, "Content-Type": "application/json"}
        rule = b'{"domain": "zz-odd.com", "action": "reject", "message": "a\\u0000b"}'
        answers = {
            "rule": client.post("/api/rules", content=rule, headers=csrf),
            "query": client.get("/api/events", params={"domain": "a\x00b"}),
            "page on": client.get("/api/events", params={"before": 2**70}),
            "rule id": client.delete(f"/api/rules/{2**70}", headers=csrf),
        }
        for what, answer in answers.items():
            assert answer.status_code == 422, (what, answer.status_code, answer.text)
            assert "unreachable" not in answer.text, (what, answer.text)
        assert "NUL" in answers["rule"].text and "NUL" in answers["query"].text
        assert client.get("/health").status_code == 200
        assert client.get("/api/rules").json()["stored"] == []
    finally:
        web.stop()
    assert "unreachable" not in web.log


def test_a_confirmation_while_the_store_is_down_is_made_once_it_is_back(tmp_path, postgres):
    """A warned sender clicks "Yes, I meant ..." while PostgreSQL is down: the page says
    the store is unreachable, nothing is used up, and the same link works once it is back
    (and counts once)."""
    import re

    from typogate import Config, Guard
    from typogate.gateway.confirmation import confirm_link, confirm_signer

    secret = "a release-link secret of the test's own"
    config = tmp_path / "typogate.toml"
    config.write_text(f'[release]\nsecret = "{secret}"\n')
    web = web_on(postgres, tmp_path, "--config", str(config))
    guard = Guard(Config.from_mapping({"domains": {"protected": ["army.mil"]}}))
    verdict = guard.evaluate("rita@arny.mil", "ann@example.org")
    link = confirm_link(
        confirm_signer(secret), "ann@example.org", [verdict], f"http://127.0.0.1:{web.port}"
    )
    try:
        web.start()
        browser = httpx.Client(timeout=30)
        page = browser.get(link)  # opened while the store is up: the form and its cookie
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        cookie = re.search(r"typogate_form=([^;]+)", page.headers["set-cookie"]).group(1)
        click = {"data": {"csrf_token": token}, "headers": {"Cookie": f"typogate_form={cookie}"}}
        postgres.stop()
        down = browser.post(link, **click)
        assert down.status_code == 503 and "unreachable" in down.text
        postgres.start()
        deadline = time.monotonic() + 30
        while browser.get(f"http://127.0.0.1:{web.port}/health").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.5)
        done = browser.post(link, **click)
        assert done.status_code == 200 and "Thank you" in done.text, done.text
        browser.close()
    finally:
        web.stop()
    store = Store(postgres.url, writer=False)
    try:
        (tie,) = [c for c in store.history.correspondents("ann@example.org")]
        assert (tie.recipient_domain, tie.released) == ("arny.mil", 1)
    finally:
        store.close()
