"""The dashboard in a real Chromium: sign in, see a message held by the real policy service
behind a real Postfix, release it, see it gone (and delivered); forged posts and bad release
links are refused."""

from __future__ import annotations

import re
import time

import pytest
from itsdangerous import TimestampSigner
from mta import policy_answer
from playwright.sync_api import expect
from web_client import sign_in_page

from typogate.gateway.quarantine import link_signer
from typogate.store import Store

pytestmark = pytest.mark.postfix


def sign_in(page, site, target: str = "/") -> None:
    sign_in_page(page, site.url, site.admin_password, target)
    expect(page.locator("header .who")).to_have_text("admin (admin)")


def test_admin_releases_a_held_message_from_the_dashboard(site, page):
    hold = site.hold("sam@army.ml")
    site.wait_caught("army.ml")  # the page is read once: what it shows must be written
    sign_in(page, site)
    row = page.locator(f"#hold-{hold['hold_id']}")
    expect(row).to_contain_text("sam@army.ml")
    expect(row).to_contain_text("army.mil")  # what the sender meant
    expect(page.locator(".top-domains")).to_contain_text("army.ml")
    expect(page.locator("#incidents-chart .main-svg").first).to_be_visible()  # plotly drew
    row.get_by_role("button", name="Release").click()
    expect(page.locator(".outcome")).to_contain_text(f"hold {hold['hold_id']} released")
    expect(page.locator(f"#hold-{hold['hold_id']}")).to_have_count(0)
    page.goto(site.url + "/")
    expect(page.locator(f"#hold-{hold['hold_id']}")).to_have_count(0)
    assert site.state(hold["hold_id"]) == "released"
    site.postfix.flush()
    site.sink.wait_for(lambda m: "sam@army.ml" in m.recipients)


def test_the_holds_table_shows_an_address_as_its_sender_writes_it(site, page):
    """Before: the holds table showed a sender as the policy service is handed her,
    unquoted: "bob<carol"@example.org read as bob<carol@example.org, which names
    carol@example.org to anyone who copies it. Every page now shows an address as its
    sender writes it."""
    hold = site.hold("quoted-sender@army.ml", sender='"bob<carol"@example.org')
    sign_in(page, site)
    expect(page.locator(f"#hold-{hold['hold_id']}")).to_contain_text('"bob<carol"@example.org')


def test_wrong_password_is_refused(site, page):
    page.goto(site.url + "/login")
    page.get_by_label("Account").fill("admin")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong account name or password.")
    page.goto(site.url + "/holds")
    expect(page).to_have_url(re.compile(r"/login"))


def test_forged_post_without_csrf_token_is_refused_in_the_browser(site, page):
    hold = site.hold("ned@navy.ml")
    sign_in(page, site)
    # A post that carries the session cookie but not the page's token, as a forged form
    # would: refused, and the message stays held.
    status = page.evaluate(
        """async (id) => (await fetch(`/holds/${id}/release`, {
            method: "POST", body: new URLSearchParams({why: "forged"})})).status""",
        hold["hold_id"],
    )
    assert status == 403
    status = page.evaluate(
        """async (id) => (await fetch(`/holds/${id}/release`, {
            method: "POST", body: new URLSearchParams({why: "forged", csrf_token: "guess"})
        })).status""",
        hold["hold_id"],
    )
    assert status == 403
    assert site.state(hold["hold_id"]) == "held"


def test_sender_release_link_works_once(site, page):
    hold = site.hold("ann@army.ml", sender="carol@example.org")
    notice = site.sink.wait_for(
        lambda m: m.recipients == ["carol@example.org"] and b"ann@army.ml" in m.data
    )
    body = notice.headers.get_payload(decode=True).decode()
    link = re.search(re.escape(site.url) + r"/release/\S+", body).group(0)
    page.goto(link)  # no account: the signed link is the permission
    expect(page.locator("h1")).to_have_text("Your message was held")
    expect(page.locator("main")).to_contain_text("army.mil")
    assert site.state(hold["hold_id"]) == "held"  # opening the link changes nothing
    page.get_by_role("button", name="Send it as addressed").click()
    expect(page.get_by_role("status")).to_contain_text("released")
    assert site.state(hold["hold_id"]) == "released"
    page.goto(link)  # used: it says what happened, and offers nothing more
    expect(page.locator("h1")).to_have_text("Your message was sent on")
    expect(page.get_by_role("button", name="Send it as addressed")).to_have_count(0)


def test_tampered_and_expired_release_links_are_refused(site, page):
    hold = site.hold("bob@army.ml")
    response = page.goto(f"{site.url}/release/{'x' * 40}.tampered")
    assert response.status == 403
    expect(page.get_by_role("alert")).to_have_text("this release link is not valid")
    # A link signed with the site's real key, 100 days ago (links live 72 hours).
    store = Store(site.db, writer=False)
    secret = store.secret("release-links")
    store.close()

    class SignedLongAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 100 * 86400

    old = link_signer(secret)
    old.signer = SignedLongAgo
    token = old.dumps({"hold": hold["hold_id"], "nonce": "old"})
    response = page.goto(f"{site.url}/release/{token}")
    assert response.status == 403
    expect(page.get_by_role("alert")).to_have_text("this release link has expired")
    # The same link signed now works: the refusal was the age, not the key.
    fresh = link_signer(secret).dumps({"hold": hold["hold_id"], "nonce": "fresh"})
    page.goto(f"{site.url}/release/{fresh}")
    expect(page.locator("h1")).to_have_text("Your message was held")
    assert site.state(hold["hold_id"]) == "held"


def test_admin_writes_and_removes_a_rule_on_the_rules_page(site, page):
    sign_in(page, site, "/rules")
    new = page.locator("form.new-rule")
    new.get_by_label("one domain and its subdomains").check()
    new.get_by_label("Suffix or domain").fill("not a domain!")
    new.get_by_label("Action").select_option("reject")
    new.get_by_role("button", name="Add").click()
    # Refused in the same words the API uses for the same rule.
    admin = site.client()
    api = admin.post(
        "/api/rules",
        json={"domain": "not a domain!", "action": "reject"},
        headers={"X-CSRF-Token": admin.csrf_token},
    )
    assert api.status_code == 422
    expect(page.get_by_role("alert")).to_have_text(api.json()["detail"])
    assert policy_answer(site.policy_port, "kim@pages-test.com").startswith("action=DUNNO")

    new = page.locator("form.new-rule")
    new.get_by_label("one domain and its subdomains").check()
    new.get_by_label("Suffix or domain").fill("pages-test.com")
    new.get_by_label("Action").select_option("reject")
    new.get_by_label("Message to the sender").fill("pages-test.com is not a partner")
    new.get_by_role("button", name="Add").click()
    stored = page.locator("table.stored tr", has=page.locator("input[value='pages-test.com']"))
    expect(stored).to_contain_text("admin")
    answer = policy_answer(site.policy_port, "kim@pages-test.com")
    assert "pages-test.com is not a partner" in answer

    stored.get_by_role("button", name="Remove").click()
    expect(page.locator("input[value='pages-test.com']")).to_have_count(0)
    assert policy_answer(site.policy_port, "kim@pages-test.com").startswith("action=DUNNO")
