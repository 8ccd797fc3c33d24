"""A warned sender says "that address is right" with the link in its notice, in a real
Chromium against `typogate serve`; the real policy service then stops questioning that
sender's mail there, and no one else's, and so does another gateway on the same store.
Before, the notice said "nothing to do", and the sender was warned again at every
message."""

from __future__ import annotations

import re
import shutil
import time

import pytest
from mta import Postfix, Server, Sink, policy_answer, postfix_root
from playwright.sync_api import expect
from ports import free_port, wait_for_port
from web_client import ApiClient, first_admin_password, sign_in_page

from typogate.store import Store

SHOWN = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d UTC$")
COUNT = re.compile(r"^\d+$")
CONFIG = """
[domains]
protected = ["army.mil", "example.org"]
[actions.misdelivery]
typo = "warn"
[release]
base_url = "http://127.0.0.1:{web}"
[gateway]
policy_listen = "127.0.0.1:{policy}"
notice_relay = "127.0.0.1:{sink}"
warn_notices = true
[web]
listen = "127.0.0.1:{web}"
[learning]
refresh_seconds = 1
[[rules]]
domain = "acme-crop.com"
action = "warn"
"""


class Site:
    def __init__(self, tmp) -> None:
        self.folder = tmp
        self.sink = Sink(free_port()).start()
        web, self.policy, self.other = free_port(), free_port(), free_port()
        self.url = f"http://127.0.0.1:{web}"
        config = tmp / "typogate.toml"
        config.write_text(CONFIG.format(web=web, policy=self.policy, sink=self.sink.port))
        self.db = f"sqlite:///{tmp / 'typogate.db'}"
        self.server = Server(
            ["serve", "--no-milter", "--config", str(config), "--db", self.db], web, tmp / "log"
        )
        # A second gateway on the same store, as on another host: it learns from the store.
        self.gateway = Server(
            ["policy", "--listen", f"127.0.0.1:{self.other}", "--config", str(config)]
            + ["--db", self.db],
            self.other,
            tmp / "other.log",
        )
        try:
            self.server.start()
            wait_for_port(self.policy)
            self.gateway.start()
        except BaseException:
            self.stop()
            raise

    def ask(self, recipient: str, sender: str, port: int = 0, **signed_in: str) -> str:
        return policy_answer(port or self.policy, recipient, sender, **signed_in).strip()

    def notice(self, sender: str, recipient: str) -> str:
        """The text of the warning notice ``sender`` was sent about ``recipient``."""
        notice = self.sink.wait_for(
            lambda m: m.recipients == [sender] and recipient.encode() in m.data
        )
        return notice.headers.get_payload(decode=True).decode()

    def released(self, sender: str, domain: str) -> int:
        store = Store(self.db, writer=False)
        try:
            return sum(
                tie.released
                for tie in store.history.relationships()
                if (tie.sender, tie.recipient_domain) == (sender, domain)
            )
        finally:
            store.close()

    def stop(self) -> None:
        try:
            self.server.stop()
            self.gateway.stop()
        finally:
            self.sink.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = Site(tmp_path_factory.mktemp("confirm"))
    yield site
    site.stop()


def _pairs(api: ApiClient, sender: str, domain: str) -> list[dict]:
    pairs = api.get("/api/pairs").json()
    return [p for p in pairs if (p["sender"], p["domain"]) == (sender, domain)]


def _warned(answer: str) -> bool:
    return answer.startswith("action=PREPEND X-Typogate")


def test_a_warned_sender_confirms_the_address_and_is_no_longer_warned(site, page):
    assert _warned(site.ask("rita@arny.mil", "ann@example.org", sasl_username="ann"))
    text = site.notice("ann@example.org", "rita@arny.mil")
    assert "If rita@arny.mil is right: say so with this link" in " ".join(text.split())
    link = re.search(re.escape(site.url) + r"/confirm/\S+", text).group(0)
    assert _warned(site.ask("rita@arny.mil", "ann@example.org", site.other, sasl_username="ann"))

    page.goto(link)
    expect(page.locator("h1")).to_have_text("Is this address right?")
    expect(page.locator("ul.recipients li")).to_have_text(
        "rita@arny.mil looks like a typo of army.mil"
    )
    page.screenshot(path=str(site.folder / "confirm-asked.png"), full_page=True)
    assert site.released("ann@example.org", "arny.mil") == 0  # opening it changes nothing
    page.get_by_role("button", name="Yes, I meant arny.mil").click()
    expect(page.locator("h1")).to_have_text("Thank you")
    expect(page.get_by_role("status")).to_contain_text(
        "typogate no longer questions your mail to arny.mil"
    )
    page.screenshot(path=str(site.folder / "confirm-done.png"), full_page=True)
    assert site.ask("rita@arny.mil", "ann@example.org", sasl_username="ann") == "action=DUNNO"
    # Nobody else's: not a colleague's, nor a message that only claims to be ann's.
    assert _warned(site.ask("rita@arny.mil", "bob@example.org", sasl_username="bob"))
    assert _warned(site.ask("rita@arny.mil", "ann@example.org"))
    # The other gateway reads it from the store (learning.refresh_seconds).
    deadline = time.monotonic() + 20
    while _warned(site.ask("rita@arny.mil", "ann@example.org", site.other, sasl_username="ann")):
        assert time.monotonic() < deadline, site.gateway.log
        time.sleep(0.3)
    assert _warned(site.ask("rita@arny.mil", "bob@example.org", site.other, sasl_username="bob"))

    # The link works once: opened again it says so, and the evidence counts once.
    page.goto(link)
    expect(page.locator("h1")).to_have_text("Thank you")
    expect(page.get_by_role("button")).to_have_count(0)
    assert site.released("ann@example.org", "arny.mil") == 1
    assert site.released("*", "arny.mil") == 1
    assert "event=confirm sender=ann@example.org domains=arny.mil" in site.server.log

    # The admin sees what ann's word taught, and whose it is (before: sent mail only).
    password = first_admin_password(site.server.log)
    api = ApiClient(site.url, "admin", password)
    try:
        rows = api.get("/api/correspondents", params={"sender": "ann@example.org"}).json()
        said = api.get("/api/said").json()
        deadline = time.monotonic() + 20  # alerts are counted in batches, each second
        while not (pairs := _pairs(api, "ann@example.org", "arny.mil")):
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        api.close()
    (ann,) = [r for r in rows if r["recipient_domain"] == "arny.mil"]
    # Not the messages sent: each ask above was one, and they reach the store in batches.
    assert (ann["received"], ann["released"]) == (0, 1)
    assert pairs[0]["released"] == 1  # the admin's review: ann said she meant it
    # ... and when, about which address (before: only in the log).
    (word,) = [w for w in said if w["sender"] == "ann@example.org"]
    assert (word["said"], word["recipients"], word["hold_id"]) == (
        "confirm",
        ["rita@arny.mil"],
        None,
    )
    sign_in_page(page, site.url, password, "/correspondents")
    page.get_by_label("Sender").fill("ann@example.org")
    page.get_by_role("button", name="Show").click()
    row = page.locator("tbody tr", has_text="arny.mil")
    expect(row.locator("td")).to_have_text(["arny.mil", COUNT, "0", "1", SHOWN, SHOWN])
    page.goto(site.url + "/pairs")
    pair = page.locator(".top-pairs tbody tr", has_text="ann@example.org")
    expect(pair.locator("td.said")).to_have_text("meant it (1)")
    word = page.locator(".senders-word tbody tr", has_text="ann@example.org")
    expect(word.locator("td")).to_have_text(
        [
            SHOWN,
            "ann@example.org",
            "confirmed a warning: the address was right",
            "rita@arny.mil",
            "a rule on arny.mil for everyone…",
        ]
    )
    # Should ann's word have been a habit, a rule for everyone, which no word lifts, is a
    # click away (filled in, not added).
    word.get_by_role("link", name="a rule on arny.mil for everyone…").click()
    new = page.locator("form.new-rule")
    expect(new.get_by_label("Suffix or domain")).to_have_value("arny.mil")
    expect(new.get_by_label("Action")).to_have_value("warn")
    expect(new.get_by_label("Only for senders")).to_have_value("")
    expect(page.locator("p.proposed")).to_contain_text("no sender's release or confirmation")
    page.goto(site.url + "/pairs")
    page.screenshot(path=str(site.folder / "pairs.png"), full_page=True)
    expect(
        page.locator(".top-pairs tbody tr", has_text="bob@example.org").locator("td.said")
    ).to_have_text("")
    page.context.clear_cookies()

    # A link changed by a single character is no link (one inside the token: the last
    # character of a signature may carry bits that decode to nothing).
    token = link.rpartition("/")[2]
    changed = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    broken = link.removesuffix(token) + changed
    page.goto(broken)
    expect(page.locator("h1")).to_have_text("This link does not work")
    expect(page.get_by_role("alert")).to_have_text("this link is not valid")


def test_a_warning_about_a_look_alike_anyone_can_register_is_confirmed_too(site, page):
    # armi.ml, a possible slip of army.mil under .ml: warned about, the message went
    # anyway, so the sender's word ends the questioning and opens nothing. Before, the
    # notice sent the sender to the administrator, and each message was warned again.
    assert _warned(site.ask("cy@armi.ml", "dee@example.org", sasl_username="dee"))
    text = " ".join(site.notice("dee@example.org", "cy@armi.ml").split())
    link = re.search(re.escape(site.url) + r"/confirm/\S+", text).group(0)
    page.goto(link)
    expect(page.locator("ul.recipients li")).to_have_text(
        "cy@armi.ml looks like a typo of army.mil"
    )
    page.get_by_role("button", name="Yes, I meant armi.ml").click()
    expect(page.locator("h1")).to_have_text("Thank you")
    assert site.ask("cy@armi.ml", "dee@example.org", sasl_username="dee") == "action=DUNNO"
    assert _warned(site.ask("cy@armi.ml", "fay@example.org", sasl_username="fay"))


def test_no_link_where_a_confirmation_would_not_count(site):
    # An admin's rule that warns: the sender's word does not overrule the admin's, so the
    # notice sends the sender to the administrator.
    assert _warned(site.ask("cy@acme-crop.com", "dee@example.org", sasl_username="dee"))
    text = " ".join(site.notice("dee@example.org", "cy@acme-crop.com").split())
    assert "/confirm/" not in text
    assert "ask your mail administrator to allow acme-crop.com for you" in text
    # A sender nobody vouched for (not signed in, not from a trusted network).
    assert _warned(site.ask("cy@arny.mil", "eve@example.org"))
    text = " ".join(site.notice("eve@example.org", "cy@arny.mil").split())
    assert "/confirm/" not in text


MILTER_CONFIG = """
[domains]
protected = ["army.mil", "example.org"]
[release]
base_url = "http://127.0.0.1:{web}"
[gateway]
policy_listen = "127.0.0.1:{policy}"
milter_listen = "inet:{milter}@127.0.0.1"
notice_relay = "127.0.0.1:{sink}"
trusted_networks = ["127.0.0.0/8"]
[web]
listen = "127.0.0.1:{web}"
"""
MESSAGE = (
    "From: {sender}\nTo: {to}\nSubject: {subject}\nMessage-ID: <{subject}@example.org>\n\nhi\n"
)


@pytest.mark.postfix
@pytest.mark.skipif(shutil.which("sendmail") is None, reason="make test installs postfix")
def test_a_sender_whose_recipient_the_milter_removed_confirms_it_and_sends_again(tmp_path, page):
    # The milter removes a slip from a message that goes to its other recipients. Before,
    # its notice said "ask your mail administrator to allow arny.mil", even where the
    # sender's own word lifts the alert; now it carries the confirm link, and the page
    # tells the sender to send the message again, which then reaches the address.
    sink = Sink(free_port()).start()
    web, policy, milter, smtpd = free_port(), free_port(), free_port(), free_port()
    config = tmp_path / "typogate.toml"
    config.write_text(MILTER_CONFIG.format(web=web, policy=policy, milter=milter, sink=sink.port))
    db = f"sqlite:///{tmp_path / 'typogate.db'}"
    server = Server(["serve", "--config", str(config), "--db", db], web, tmp_path / "log")
    postfix = Postfix(
        postfix_root(),
        smtpd,
        sink.port,
        {"non_smtpd_milters": f"inet:127.0.0.1:{milter}", "milter_protocol": "6"},
    )
    url = f"http://127.0.0.1:{web}"

    def send(sender: str, subject: str, slip: str = "rita@arny.mil") -> None:
        recipients = [slip, "jane@army.mil"]
        text = MESSAGE.format(sender=sender, to=", ".join(recipients), subject=subject)
        assert postfix.sendmail(sender, recipients, text).returncode == 0

    def delivered(subject: str) -> list[str]:
        return sink.wait_for(
            lambda m: f"Subject: {subject}".encode() in m.data and m.sender not in ("", "<>")
        ).recipients

    def notice(sender: str, subject: str) -> str:
        found = sink.wait_for(
            lambda m: m.recipients == [sender] and f'"{subject}"'.encode() in m.data
        )
        return " ".join(found.headers.get_payload(decode=True).decode().split())

    try:
        server.start()
        wait_for_port(milter)
        postfix.start()
        send("ann@example.org", "first")
        assert delivered("first") == ["jane@army.mil"]
        text = notice("ann@example.org", "first")
        assert "If rita@arny.mil is right: say so with this link" in text
        link = re.search(re.escape(url) + r"/confirm/\S+", text).group(0)

        page.goto(link)
        expect(page.locator("h1")).to_have_text("Is this address right?")
        expect(page.locator("main")).to_contain_text("was not delivered to rita@arny.mil")
        page.get_by_role("button", name="Yes, I meant arny.mil").click()
        expect(page.get_by_role("status")).to_contain_text(
            "Send your message again to rita@arny.mil"
        )
        page.screenshot(path=str(tmp_path / "confirm-removed.png"), full_page=True)

        send("ann@example.org", "again")
        assert sorted(delivered("again")) == ["jane@army.mil", "rita@arny.mil"]
        send("bob@example.org", "colleague")  # nobody else's mail there
        assert delivered("colleague") == ["jane@army.mil"]
        assert "/confirm/" in notice("bob@example.org", "colleague")
        # A likely slip to a look-alike anyone can register: no sender's word lifts it.
        send("ann@example.org", "leak", slip="john@army.ml")
        assert delivered("leak") == ["jane@army.mil"]
        text = notice("ann@example.org", "leak")
        assert "/confirm/" not in text
        assert "ask your mail administrator to allow army.ml" in text
    finally:
        postfix.remove()
        server.stop()
        sink.stop()
