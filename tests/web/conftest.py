"""One real typogate site for the web tests: `typogate serve` (policy service, milter, web,
SQLite store) behind a throwaway Postfix that delivers to a recording sink."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from mta import TYPOGATE, Postfix, Server, Sink, hold_through_postfix, postfix_root
from ports import free_port
from web_client import ApiClient, first_admin_password

from typogate.store import Store

CONFIG = """
[domains]
protected = ["army.mil", "navy.mil", "example.org"]
[actions]
typo = "hold"
[release]
postfix_config = "{postfix}"
base_url = "http://127.0.0.1:{web}"
[gateway]
policy_listen = "127.0.0.1:{policy}"
milter_listen = "inet:{milter}@127.0.0.1"
notice_relay = "127.0.0.1:{smtpd}"
[web]
listen = "127.0.0.1:{web}"
"""


@dataclass
class Site:
    url: str
    policy_port: int
    postfix: Postfix
    sink: Sink
    db: str
    config: Path
    admin_password: str
    server: Server

    def hold(self, recipient: str, sender: str = "alice@example.org") -> dict:
        """Send one message through Postfix to a typo recipient; the hold typogate recorded."""
        return hold_through_postfix(self.postfix, self.db, recipient, sender)

    def wait_caught(self, domain: str, timeout: float = 20.0) -> None:
        """Wait until the store counts ``domain`` among the caught ones: incidents are
        written in batches (about a second), after the hold itself."""
        store = Store(self.db, writer=False)
        deadline = time.monotonic() + timeout
        try:
            while not any(d.domain == domain for d in store.history.top_domains()):
                assert time.monotonic() < deadline, f"{domain} not counted as caught"
                time.sleep(0.1)
        finally:
            store.close()

    def state(self, hold_id: str) -> str:
        store = Store(self.db, writer=False)
        try:
            held = store.holds.get(hold_id)
            assert held is not None
            return str(held.state)
        finally:
            store.close()

    def client(self, username: str = "admin", password: str | None = None) -> ApiClient:
        """An API client signed in through POST /api/session."""
        return ApiClient(self.url, username, password or self.admin_password)

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [TYPOGATE, *args, "--db", self.db],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Site:
    if shutil.which("postfix") is None or shutil.which("swaks") is None:
        pytest.skip("make test installs postfix and swaks")
    tmp = tmp_path_factory.mktemp("site")
    sink = Sink(free_port()).start()
    postfix = Postfix(postfix_root(), free_port(), sink.port)
    web, policy, milter = free_port(), free_port(), free_port()
    config = tmp / "typogate.toml"
    config.write_text(
        CONFIG.format(
            postfix=postfix.config_dir,
            web=web,
            policy=policy,
            milter=milter,
            smtpd=postfix.smtpd_port,
        )
    )
    db = f"sqlite:///{tmp / 'typogate.db'}"
    server = Server(["serve", "--config", str(config), "--db", db], web, tmp / "serve.log")
    server.start()
    password = first_admin_password(server.log)
    postfix.settings["smtpd_recipient_restrictions"] = (
        f"check_policy_service {{ inet:127.0.0.1:{policy}, default_action=DUNNO }}"
    )
    try:
        postfix.start()
        yield Site(
            f"http://127.0.0.1:{web}",
            policy,
            postfix,
            sink,
            db,
            config,
            password,
            server,
        )
    finally:
        postfix.remove()
        server.stop()
        sink.stop()
