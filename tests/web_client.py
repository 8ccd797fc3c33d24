"""A REST client of typogate's web part, signed in: for the web tests and the benches."""

from __future__ import annotations

import re

import httpx


class ApiClient(httpx.Client):
    """Signs in through ``POST /api/session``.

    httpx keeps Secure cookies for https only; typogate sets Secure cookies even on
    loopback (browsers accept them there), so this client sends the session cookie itself.
    """

    def __init__(self, url: str, username: str, password: str, timeout: float = 30) -> None:
        super().__init__(base_url=url, timeout=timeout)
        answer = self.post("/api/session", json={"username": username, "password": password})
        assert answer.status_code == 200, answer.text
        cookie = re.search(r"typogate_session=([^;]+)", answer.headers["set-cookie"])
        assert cookie is not None
        self.headers["Cookie"] = f"typogate_session={cookie.group(1)}"
        self.csrf_token: str = answer.json()["csrf_token"]
        self.role: str = answer.json()["role"]


def first_admin_password(log: str) -> str:
    """The password ``typogate serve``/``web`` printed once for the first admin account."""
    found = re.search(r"password (\S+)", log)
    assert found is not None, log
    return found.group(1)


def sign_in_page(page, url: str, password: str, target: str = "/", username: str = "admin"):
    """Sign ``page`` (Playwright) in through the login form, starting from ``target``."""
    from playwright.sync_api import expect

    page.goto(url + target)
    expect(page).to_have_url(re.compile(r"/login\?next="))  # nothing shows before sign-in
    page.get_by_label("Account").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("header .who")).to_contain_text(username)
