"""The sign-in throttle against a real `typogate web` (uvicorn), guessed at as an attacker
would: forged X-Forwarded-For, parallel guesses, a viewer's own sign-in in between, and the
real admin still getting in while the account is under attack.

Different clients are different loopback addresses (127.0.0.2, 127.0.0.3, ...: all of
127/8 is this machine), the server listens on 127.0.0.1 only.
"""

from __future__ import annotations

import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from mta import TYPOGATE, Server
from ports import free_port
from web_client import first_admin_password

VIEWER_PASSWORD = "viewer-password-long"


@dataclass
class Web:
    url: str
    admin_password: str
    server: Server

    def client(self, source: str = "127.0.0.1") -> httpx.Client:
        """A client whose connections come from loopback address ``source``."""
        transport = httpx.HTTPTransport(local_address=source)
        return httpx.Client(base_url=self.url, transport=transport, timeout=30)

    def sign_in(self, username: str, password: str, source: str = "127.0.0.1", **headers):
        with self.client(source) as client:
            return client.post(
                "/api/session", json={"username": username, "password": password}, headers=headers
            )


def start_web(tmp: Path, config: str = "") -> Web:
    (tmp / "typogate.toml").write_text(config)
    db = f"sqlite:///{tmp / 'typogate.db'}"
    port = free_port()
    server = Server(
        [
            "web",
            "--listen",
            f"127.0.0.1:{port}",
            "--db",
            db,
            "--config",
            str(tmp / "typogate.toml"),
        ],
        port,
        tmp / "web.log",
    ).start()
    added = subprocess.run(
        [TYPOGATE, "users", "add", "vera", "--role", "viewer", "--password-stdin", "--db", db],
        input=VIEWER_PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert added.returncode == 0, added.stderr
    return Web(f"http://127.0.0.1:{port}", first_admin_password(server.log), server)


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    """One server for the tests below; each guesses at its own account from its own
    client address, so their counts do not mix."""
    site = start_web(tmp_path_factory.mktemp("sign-in"))
    yield site
    site.server.stop()


def test_forged_forwarded_for_from_loopback_buys_no_guesses(web):
    """Before: uvicorn took X-Forwarded-For from loopback as the client, so 60 guesses with
    60 made-up addresses were all checked."""
    answers = [
        web.sign_in(
            "forged", f"guess-{n}", "127.0.0.1", **{"X-Forwarded-For": f"198.51.100.{n}"}
        ).status_code
        for n in range(30)
    ]
    # Ten free guesses, then one a second, two seconds, ... after the last: a slow machine
    # may let one or two more through, never the thirty.
    assert answers[:10] == [401] * 10 and answers.count(429) >= 18, answers


def test_parallel_guesses_are_counted_before_they_are_checked(web):
    """Before: 40 guesses sent at once were all checked (the limit was 10)."""
    with ThreadPoolExecutor(40) as pool:
        answers = list(
            pool.map(
                lambda n: web.sign_in("parallel", f"guess-{n}", "127.0.0.3").status_code,
                range(40),
            )
        )
    assert answers.count(401) <= 10 and answers.count(429) >= 30, answers
    refused = web.sign_in("parallel", "one-more", "127.0.0.3")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1


def test_a_viewer_signing_in_does_not_reset_the_count_of_admin_guesses(web):
    """Before: any successful sign-in from the client cleared its failures (ten more free
    guesses at admin after each sign-in as the viewer)."""
    source = "127.0.0.4"
    for n in range(10):
        assert web.sign_in("boss", f"guess-{n}", source).status_code == 401
    waiting = web.sign_in("vera", VIEWER_PASSWORD, source)  # the client is slowed down too
    assert waiting.status_code == 429
    time.sleep(float(waiting.headers["Retry-After"]))
    assert web.sign_in("vera", VIEWER_PASSWORD, source).status_code == 200
    after = [web.sign_in("boss", f"guess-{n}", source).status_code for n in range(10, 13)]
    assert after.count(401) <= 1 and after.count(429) >= 2, after


def test_the_real_admin_gets_in_while_the_account_is_under_attack(web):
    """Before: ten failures locked the real admin out for ten minutes. Now an attack on the
    account slows everyone down to a guess per minutes, but the admin's own browser (it
    signed in before: it carries the device cookie) waits at most a moment, even from the
    attacker's address (the same proxy or NAT)."""
    shared = "127.0.0.5"
    first = web.sign_in("admin", web.admin_password, shared)
    assert first.status_code == 200
    device = re.search(r"typogate_device=([^;]+)", first.headers["set-cookie"]).group(1)
    guesses = 0
    while guesses < 12:  # ten free guesses, then one after 1 s, one after 2 s more
        answer = web.sign_in("admin", f"guess-{guesses}", shared)
        if answer.status_code == 429:
            time.sleep(float(answer.headers["Retry-After"]))
            continue
        assert answer.status_code == 401
        guesses += 1
    # The next guess waits 4 s, then 8, 16, ... up to 15 minutes; the right password from
    # another browser too (from this address or any other)...
    for source in (shared, "127.0.0.6"):
        stranger = web.sign_in("admin", web.admin_password, source)
        assert stranger.status_code == 429 and int(stranger.headers["Retry-After"]) >= 2
    # (a forged device cookie is no key)
    forged = web.sign_in("admin", web.admin_password, shared, Cookie="typogate_device=x.y.z")
    assert forged.status_code == 429
    # ...while the admin's own browser gets in within two seconds.
    started = time.monotonic()
    cookie = {"Cookie": f"typogate_device={device}"}
    answer = web.sign_in("admin", web.admin_password, shared, **cookie)
    if answer.status_code == 429:
        assert int(answer.headers["Retry-After"]) <= 2
        time.sleep(float(answer.headers["Retry-After"]))
        answer = web.sign_in("admin", web.admin_password, shared, **cookie)
    assert answer.status_code == 200, answer.text
    assert time.monotonic() - started < 5


def test_forwarded_for_counts_from_a_trusted_proxy_only(tmp_path):
    """With web.trusted_proxies naming 127.0.0.1, the proxy's X-Forwarded-For tells clients
    apart (each gets its own ten guesses); the same header from 127.0.0.7 is ignored."""
    web = start_web(tmp_path, '[web]\ntrusted_proxies = ["127.0.0.1"]\n')
    try:
        for client, account in (("203.0.113.1", "vera"), ("203.0.113.2", "admin")):
            # The left part is the client's own word; the proxy appended what it saw.
            header = {"X-Forwarded-For": f"10.9.9.9, {client}"}
            answers = [web.sign_in(account, f"guess-{n}", **header).status_code for n in range(11)]
            assert answers == [401] * 10 + [429], (client, answers)
        forged = [
            web.sign_in("nobody", "guess", "127.0.0.7", **{"X-Forwarded-For": f"192.0.2.{n}"})
            for n in range(11)
        ]
        assert [a.status_code for a in forged] == [401] * 10 + [429]
        # Page sign-in shows the wait in words, with Retry-After.
        with web.client("127.0.0.7") as client:
            form = client.get("/login")
            token = form.cookies.get("typogate_form") or ""
            client.cookies.set("typogate_form", token)
            page = client.post(
                "/login", data={"username": "nobody", "password": "x", "csrf_token": token}
            )
        assert page.status_code == 429 and "Try again in" in page.text
        assert int(page.headers["Retry-After"]) >= 1
    finally:
        web.server.stop()
