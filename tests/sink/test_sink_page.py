"""The sink's dashboard page in a real Chromium, and its API, on what a real sink answered:
traffic over time, top look-alikes, top sending domains, the report sent."""

from __future__ import annotations

import re
import smtplib
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from mta import TYPOGATE, Sink, web_on
from ports import free_port
from sink_process import refused_from_odd_sender
from web_client import ApiClient, first_admin_password

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-component-update"]
REPORTS = """report_relay = "127.0.0.1:{port}"
report_hour = 23
[[sink.reports]]
intended = "army.mil"
contact = "typo-reports@army.mil"
"""


def refuse(port: int, sender: str, recipient: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("mx.sender.example")
        client.mail(sender)
        assert client.rcpt(recipient)[0] == 550


@pytest.fixture
def web_on_sink_store(sink_in, tmp_path):
    """A sink's store after a day of traffic and one report sent, and ``typogate web`` on it."""
    mailbox = Sink(free_port()).start()
    # report_hour 23: the running sink leaves the sending to `sink report --send` below.
    sink = sink_in(extra=REPORTS.format(port=mailbox.port))
    refuse(sink.port, "ann@contractor.example", "john@army.ml")
    refuse(sink.port, "ann@contractor.example", "jim@army.ml")
    refuse(sink.port, "bo@home.example", "sue@navy.ml")
    sink.stop()
    web = web_on(sink.db, tmp_path)  # the web part reads no [sink] section
    try:
        yield f"http://127.0.0.1:{web.port}", first_admin_password(web.log), sink, mailbox
    finally:
        web.stop()
        mailbox.stop()


def send_yesterdays_report(sink, mailbox) -> None:
    """Yesterday's traffic, recorded through the sink's own log, mailed by the command."""
    from typogate.store import Store
    from typogate.store.sink_log import SinkLog, SinkOutcome, SinkRecord

    store = Store(sink.db, writer=False)
    sink_log = SinkLog(store.engine).start()
    sink_log.record(
        SinkRecord(
            datetime.now(UTC) - timedelta(days=1), "192.0.2.8", "192.0.2.0/24", "mx",
            "partner.example", "h", None, "army.ml", "army.mil", SinkOutcome.HINT, "550 5.1.2",
        )
    )  # fmt: skip
    sink_log.close()
    store.close()
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    done = subprocess.run(
        [TYPOGATE, "sink", "report", "--since", yesterday, "--send", "--db", sink.db,
         "--config", str(sink.config)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    mailbox.wait_for(lambda m: m.recipients == ["typo-reports@army.mil"])


def test_sink_page_shows_traffic_lookalikes_senders_and_reports(web_on_sink_store):
    if not Path(CHROMIUM).exists():
        pytest.skip("make test installs Debian's chromium")
    from playwright.sync_api import expect, sync_playwright

    url, password, sink, mailbox = web_on_sink_store
    send_yesterdays_report(sink, mailbox)

    api = ApiClient(url, "admin", password)
    stats = api.get("/api/sink/stats", params={"days": 7}).json()
    assert stats["by_day"][-1]["hint"] == 3
    assert stats["top_lookalikes"][0] == {
        "lookalike": "army.ml",
        "intended": "army.mil",
        "count": 3,
    }
    assert stats["top_sender_domains"][0]["sender_domain"] == "contractor.example"
    assert [r["state"] for r in stats["reports_sent"]] == ["sent"]
    today = datetime.now(UTC).date().isoformat()
    reports = api.get("/api/sink/reports", params={"since": today}).json()
    assert {r["report"]["intended"]: r["messages"] for r in reports} == {
        "army.mil": 2,
        "navy.mil": 1,
    }
    assert api.get("/api/sink/reports", params={"since": "2026-13-01"}).status_code == 422

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(url + "/sink")
            expect(page).to_have_url(re.compile(r"/login\?next=/sink"))
            page.get_by_label("Account").fill("admin")
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Sign in").click()
            expect(page.locator("h1")).to_have_text("Sink, last 30 days")
            expect(page.locator("#sink-chart .main-svg").first).to_be_visible()  # plotly drew
            expect(page.locator(".top-lookalikes tbody tr").first).to_contain_text("army.ml")
            expect(page.locator(".top-lookalikes tbody tr").first).to_contain_text("army.mil")
            expect(page.locator(".top-sender-domains tbody tr").first).to_contain_text(
                "contractor.example"
            )
            expect(page.locator(".intended")).to_contain_text("navy.mil")
            sent = page.locator(".reports-sent tbody tr").first
            expect(sent).to_contain_text("typo-reports@army.mil")
            expect(sent).to_contain_text("sent")
            page.get_by_role("link", name="Sink").click()  # the page is in the navigation
            expect(page).to_have_url(re.compile(r"/sink$"))
        finally:
            browser.close()


def test_a_strangers_sending_domain_is_shown_not_obeyed(sink_in, tmp_path):
    """Before: the sink page wrote what a stranger put after MAIL FROM's @ as it came; with
    a right-to-left override (U+202E) in it, the browser ran the rest of the text backwards
    (the per-organisation list read "…elpmaxe.example" as "example.exampl…"). Now it is
    shown as its escape."""
    if not Path(CHROMIUM).exists():
        pytest.skip("make test installs Debian's chromium")
    from playwright.sync_api import expect, sync_playwright

    sink = sink_in()
    refused_from_odd_sender(sink.port)
    sink.stop()
    web = web_on(sink.db, tmp_path)
    web_port = web.port
    try:
        password = first_admin_password(web.log)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.goto(f"http://127.0.0.1:{web_port}/login?next=/sink")
                page.get_by_label("Account").fill("admin")
                page.get_by_label("Password").fill(password)
                page.get_by_role("button", name="Sign in").click()
                shown = "home\\x1bc\\u202elpmaxe.example"
                expect(page.locator(".top-sender-domains tbody tr").first).to_contain_text(shown)
                expect(page.locator(".intended tbody tr").first).to_contain_text(shown)
                text = page.locator("main").inner_text()
                assert "\u202e" not in text and "\x1b" not in text, repr(text)
            finally:
                browser.close()
    finally:
        web.stop()
