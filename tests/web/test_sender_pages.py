"""What a sender and an admin see, in a real Chromium against typogate serve behind a real
Postfix: the sender's release page tells them which message (subject, when written, every
recipient), nothing of typogate's internals, and after a release when and by whom; the
dashboard warns when release links point at loopback; every page shows time one way, with
its zone; the dashboard's axis is not cut off."""

from __future__ import annotations

import re
import smtplib
import subprocess
import time

import pytest
from mta import Server
from playwright.sync_api import expect
from ports import free_port
from web_client import sign_in_page

from typogate.store import Store

pytestmark = pytest.mark.postfix
SHOWN_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d UTC$")


def held_with_subject(site, sender: str, recipients: list[str], subject: str) -> dict:
    """Send one message through Postfix; the hold typogate recorded for it."""
    done = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{site.postfix.smtpd_port}", "--from", sender]
        + ["--to", ",".join(recipients), "--header", f"Subject: {subject}"]
        + ["--body", "figures attached", "--timeout", "30"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "250 2.0.0 Ok: queued" in done.stdout, done.stdout
    store = Store(site.db, writer=False)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for hold in store.holds.in_state():
                if hold.sender == sender:
                    return {"hold_id": hold.hold_id, "queue_id": hold.queue_id}
            time.sleep(0.1)
    finally:
        store.close()
    raise AssertionError("hold not recorded")


def release_link(site, sender: str, recipient: str) -> str:
    notice = site.sink.wait_for(lambda m: m.recipients == [sender] and recipient.encode() in m.data)
    body = notice.headers.get_payload(decode=True).decode()
    return re.search(re.escape(site.url) + r"/release/\S+", body).group(0)


def test_the_sender_sees_their_message_and_what_became_of_it(site, page):
    """Before: the page listed only the typo recipient, no subject or date; after the
    release it said 'hold <id> released (postsuper: ...)', and opening the link again said
    'this release link was already used' with 'ask your mail administrator'."""
    sender = "quinn@example.org"
    hold = held_with_subject(site, sender, ["rita@army.ml", "ben@army.mil"], "Quarterly figures")
    link = release_link(site, sender, "rita@army.ml")
    page.goto(link)
    main = page.locator("main")
    expect(page.locator("h1")).to_have_text("Your message was held")
    expect(main.locator(".subject")).to_have_text("Quarterly figures")
    expect(main.locator(".written time")).to_have_text(SHOWN_TIME)
    recipients = main.locator("ul.recipients li")
    expect(recipients).to_have_count(2)
    page.screenshot(path=str(site.config.parent / "release-held.png"), full_page=True)
    expect(recipients.filter(has_text="rita@army.ml")).to_contain_text(
        "looks like a typo of army.mil"
    )
    expect(recipients.filter(has_text="ben@army.mil")).not_to_contain_text("typo")
    page.get_by_role("button", name="Send it as addressed").click()
    expect(page.locator("h1")).to_have_text("Your message was sent on")
    status = page.get_by_role("status")
    expect(status).to_contain_text("by you, with the link in typogate's notice")
    expect(status.locator("time")).to_have_text(SHOWN_TIME)
    page.screenshot(path=str(site.config.parent / "release-done.png"), full_page=True)
    shown = main.inner_text()
    for internal in (hold["hold_id"], hold["queue_id"], "postsuper", "hold "):
        assert internal not in shown, internal
    assert site.state(hold["hold_id"]) == "released"
    page.goto(link)  # the used link: what happened, not "ask your mail administrator"
    expect(page.locator("h1")).to_have_text("Your message was sent on")
    expect(main.locator(".subject")).to_have_text("Quarterly figures")
    assert "already used" not in main.inner_text()


def test_a_look_alike_shows_for_what_it_is(site, page):
    """Before: the sender's page read "rita@аrmy.mil looks like a typo of army.mil" (a
    Cyrillic а), the same letters twice, above the button that sends it as addressed; so
    did the notice that links to it; the admin's hold queue and verdicts showed аrmy.mil
    alone. Now its A-label stands beside."""
    sender, recipient = "uma@example.org", "rita@\u0430rmy.mil"
    with smtplib.SMTP("127.0.0.1", site.postfix.smtpd_port, timeout=30) as client:
        client.command_encoding = "utf-8"
        client.ehlo("client.example")
        assert client.docmd(f"MAIL FROM:<{sender}> SMTPUTF8")[0] == 250
        assert client.docmd(f"RCPT TO:<{recipient}>")[0] == 250  # held, not refused
        assert client.docmd("DATA")[0] == 354
        client.send(b"Subject: Lookalike figures\r\n\r\nfigures\r\n.\r\n")
        assert client.getreply()[0] == 250
    page.goto(release_link(site, sender, "X-Typogate-Hold"))  # sent at RCPT: no subject
    notice = site.sink.wait_for(lambda m: m.recipients == [sender]).headers
    assert "(written rita@xn--rmy-5cd.mil)" in notice.get_payload(decode=True).decode()
    typo = page.locator("main ul.recipients li")
    expect(typo).to_contain_text(recipient)
    expect(typo).to_contain_text("xn--rmy-5cd.mil")
    expect(typo).to_contain_text("is written with letters that only look like those of army.mil")
    page.screenshot(path=str(site.config.parent / "release-look-alike.png"), full_page=True)
    sign_in_page(page, site.url, site.admin_password, "/holds")
    row = page.locator("table.holds tbody tr", has_text=sender)
    expect(row).to_contain_text("xn--rmy-5cd.mil")
    page.screenshot(path=str(site.config.parent / "holds-look-alike.png"), full_page=True)
    page.goto(site.url + "/events?domain=" + "\u0430rmy.mil")
    expect(page.locator("table.events tbody tr").first).to_contain_text("xn--rmy-5cd.mil")


def test_a_direction_override_in_a_sender_is_shown_not_obeyed(site, page):
    """Before: a sender whose address held a right-to-left override (U+202E) was written
    into the hold queue, the verdicts, the top senders and the sender's own page as it
    came, and the browser ran the text after it backwards ("lim.ymra" read "army.mil").
    Now it is shown as its escape, on every page, beside the address."""
    tag = f"v{time.monotonic_ns()}"
    sender = f'"{tag}\u202elim.ymra"@example.org'
    with smtplib.SMTP("127.0.0.1", site.postfix.smtpd_port, timeout=30) as client:
        client.command_encoding = "utf-8"
        client.ehlo("client.example")
        assert client.docmd(f"MAIL FROM:<{sender}> SMTPUTF8")[0] == 250
        assert client.docmd("RCPT TO:<eli@navy.ml>")[0] == 250  # held, not refused
        assert client.docmd("DATA")[0] == 354
        client.send(b"Subject: Leave\r\n\r\nfigures\r\n.\r\n")
        assert client.getreply()[0] == 250
    shown = f"{tag}\\u202elim.ymra@example.org"  # Postfix hands on the local part unquoted
    store = Store(site.db, writer=False)
    try:
        deadline = time.monotonic() + 20
        while not (held := [h for h in store.holds.in_state() if tag in (h.sender or "")]):
            assert time.monotonic() < deadline, "hold not recorded"
            time.sleep(0.1)
    finally:
        store.close()
    # The notice cannot reach a sender that is not ASCII here (the test's sink has no
    # SMTPUTF8): the admin's command gives the same link.
    link = site.cli("release-link", held[0].hold_id, "--config", str(site.config))
    assert link.returncode == 0, link.stderr
    page.goto(link.stdout.strip())
    expect(page.locator("main dl")).to_contain_text(shown)
    sign_in_page(page, site.url, site.admin_password, "/holds")
    row = page.locator("table.holds tbody tr", has_text=tag)
    expect(row).to_contain_text(shown)
    page.goto(site.url + "/events?domain=navy.ml")
    expect(page.locator("table.events tbody tr", has_text=tag).first).to_contain_text(shown)
    page.goto(site.url + "/")
    expect(page.locator("table.top-senders")).to_contain_text(shown)
    for path in ("/holds", "/events?domain=navy.ml", "/"):
        page.goto(site.url + path)
        assert "\u202e" not in page.locator("main").inner_text(), path


def test_a_release_by_the_admin_is_said_so_on_the_senders_page(site, page):
    sender = "dora@example.org"
    hold = held_with_subject(site, sender, ["eli@navy.ml"], "Leave request")
    link = release_link(site, sender, "eli@navy.ml")
    admin = site.client()
    released = admin.post(
        f"/api/holds/{hold['hold_id']}/release",
        json={"why": "checked with dora"},
        headers={"X-CSRF-Token": admin.csrf_token},
    )
    assert released.status_code == 200
    page.goto(link)
    expect(page.locator("h1")).to_have_text("Your message was sent on")
    expect(page.get_by_role("status")).to_contain_text("by your mail administrator")
    expect(page.get_by_role("button", name="Send it as addressed")).to_have_count(0)


def test_dashboard_warns_of_loopback_release_links(site, page):
    """Before: release links pointed at http://127.0.0.1 with no word of warning."""
    assert "release.base_url is http://127.0.0.1:" in site.server.log  # at start-up
    sign_in_page(page, site.url, site.admin_password)
    warning = page.locator(".release-links")
    expect(warning).to_contain_text("a loopback address, but notices go to senders")


def test_the_dashboard_axis_shows_its_year_whole(site, page):
    """Before: the year plotly writes under the first day was cut in half by the margin."""
    site.hold("fay@army.ml", sender="gus@example.org")
    sign_in_page(page, site.url, site.admin_password)
    chart = page.locator("#incidents-chart .main-svg").first
    expect(chart).to_be_visible()
    drawn = chart.bounding_box()
    labels = page.locator("#incidents-chart .xtick text")
    expect(labels.first).to_be_visible()
    # The first label carries the year on a line of its own ("Nov 1" over "2026").
    assert re.search(r"20\d\d$", labels.first.text_content()), labels.all_text_contents()
    legend = page.locator("#incidents-chart .legend").bounding_box()
    for label in labels.all():
        box = label.bounding_box()
        assert box["y"] + box["height"] <= drawn["y"] + drawn["height"] + 0.5, (box, drawn)
        # ...and not under the legend (which covered it, white on white)
        apart = (
            box["y"] + box["height"] <= legend["y"] or legend["y"] + legend["height"] <= box["y"]
        )
        assert apart, (label.text_content(), box, legend)
    page.screenshot(path=str(site.config.parent / "dashboard.png"), full_page=True)


def test_every_page_shows_time_one_way_with_its_zone(site, page):
    """Before: events showed '2026-03-02 09:31:07' and the dashboard '2026-03-02 09:31',
    neither saying which zone."""
    site.hold("hal@army.ml", sender="ivy@example.org")
    sign_in_page(page, site.url, site.admin_password)
    shown: list[tuple[str, str]] = []
    for target, cells in (
        ("/", "table.holds tbody tr td:first-child time"),
        ("/events", "table.events tbody tr td:first-child time"),
        ("/holds", "table.holds tbody tr td:first-child time"),
    ):
        page.goto(site.url + target)
        expect(page.locator(cells).first).to_have_text(SHOWN_TIME)
        shown += [(c.inner_text(), c.get_attribute("datetime")) for c in page.locator(cells).all()]
    for text, exact in shown:
        assert SHOWN_TIME.match(text) and exact.endswith("+00:00"), (text, exact)


def test_no_warning_when_links_and_web_stay_on_this_machine(tmp_path):
    """A loopback base_url is right when nothing leaves this machine: no notices and a
    loopback web interface."""
    port = free_port()
    db = f"sqlite:///{tmp_path / 'typogate.db'}"
    config = tmp_path / "typogate.toml"
    config.write_text('[gateway]\nnotice_relay = ""\n')  # notices are on by default
    web = Server(
        ["web", "--listen", f"127.0.0.1:{port}", "--db", db, "--config", str(config)],
        port,
        tmp_path / "web.log",
    )
    web.start()
    try:
        assert "web interface on" in web.log or "password" in web.log
    finally:
        web.stop()
    assert "release.base_url" not in web.log
