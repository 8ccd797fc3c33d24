"""Every adapter judges with the same store: its learned correspondents and its rules.

One SQLite store, seeded by `typogate learn` from a log in which the organisation writes to
acme-corp.com (in no list) all the time. Then `check --db`, `policy --db`, the milter and the
proxy with `--db`, and `serve`, all on that store, flag the near-twin acme-crop.com; and a
rule added through the REST API of the `serve` process reaches every running adapter
(each re-reads the store's rules every two seconds).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest
from mta import (
    Postfix,
    Server,
    Sink,
    policy_answer,
    postfix_root,
    run_typogate,
    swaks,
    typogate_output,
)
from ports import free_port
from web_client import ApiClient, first_admin_password

pytestmark = [
    pytest.mark.postfix,
    pytest.mark.skipif(shutil.which("postfix") is None, reason="make test installs postfix"),
]

CONFIG = """
[domains]
protected = ["army.mil", "example.org"]

[gateway]
policy_listen = "127.0.0.1:{serve_policy}"
milter_listen = "inet:{serve_milter}@127.0.0.1"
journal = "journal.jsonl"

[web]
listen = "127.0.0.1:{web}"
"""

LOG = "".join(
    f"Mar  1 10:{i:02d}:00 mx1 postfix/qmgr[90]: A{i:03X}: from=<ops@example.org>, size=900, nrcpt=1 (queue active)\n"  # noqa: E501
    f"Mar  1 10:{i:02d}:01 mx1 postfix/smtp[91]: A{i:03X}: to=<orders@acme-corp.com>, relay=mx.acme-corp.com[203.0.113.4]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 ok)\n"  # noqa: E501
    for i in range(60)
)
MESSAGE = "From: alice@example.org\nTo: {to}\nSubject: {subject}\n\n{subject} body\n"


class Adapters:
    """The running adapters on one store, and how to ask each about a recipient."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.ports = {name: free_port() for name in ("policy", "milter", "serve_policy", "web")}
        self.ports["serve_milter"] = free_port()
        self.config = tmp / "typogate.toml"
        self.config.write_text(
            CONFIG.format(
                serve_policy=self.ports["serve_policy"],
                serve_milter=self.ports["serve_milter"],
                web=self.ports["web"],
            )
        )
        self.db = f"sqlite:///{tmp / 'typogate.db'}"
        self.sink = Sink(free_port()).start()
        self.servers: list[Server] = []
        self.postfix: Postfix | None = None

    def start(self) -> Adapters:
        (self.tmp / "mail.log").write_text(LOG)
        status, said = run_typogate("learn", "mail.log", "--db", self.db, cwd=self.tmp)
        assert status == 0, said
        common = ["--config", str(self.config), "--db", self.db]
        self.serve = self._server(["serve", *common], self.ports["web"], "serve.log")
        self._server(
            ["policy", "--listen", f"127.0.0.1:{self.ports['policy']}", *common],
            self.ports["policy"],
            "policy.log",
        )
        self._server(
            ["milter", "--listen", f"inet:{self.ports['milter']}@127.0.0.1", *common],
            self.ports["milter"],
            "milter.log",
        )
        self.proxy_port = free_port()
        self._server(
            [
                "proxy",
                "--listen",
                f"127.0.0.1:{self.proxy_port}",
                "--next-hop",
                f"127.0.0.1:{self.sink.port}",
                *common,
            ],
            self.proxy_port,
            "proxy.log",
        )
        self.postfix = Postfix(
            postfix_root(),
            free_port(),
            self.sink.port,
            {
                "non_smtpd_milters": f"inet:127.0.0.1:{self.ports['milter']}",
                "milter_default_action": "accept",
                "milter_protocol": "6",
            },
        ).start()
        return self

    def _server(self, args: list[str], port: int, log: str) -> Server:
        server = Server(args, port, self.tmp / log).start()
        self.servers.append(server)
        return server

    def stop(self) -> None:
        if self.postfix is not None:
            self.postfix.remove()
        for server in self.servers:
            server.stop()
        self.sink.stop()

    # --- one question per adapter: is this recipient refused? ---------------------------

    def check(self, recipient: str) -> bool:
        done = typogate_output(self.tmp, "check", "--json", *self._common(), recipient)
        verdict = json.loads(done)
        return verdict["action"] == "reject"

    def policy(self, recipient: str) -> bool:
        return policy_answer(self.ports["policy"], recipient).startswith("action=550 ")

    def serve_policy(self, recipient: str) -> bool:
        return policy_answer(self.ports["serve_policy"], recipient).startswith("action=550 ")

    def proxy(self, recipient: str) -> bool:
        result = swaks(self.proxy_port, "alice@example.org", [recipient], "proxied")
        return re.search(r"<\*\* +550 ", result.stdout) is not None

    def milter(self, recipient: str) -> bool:
        assert self.postfix is not None
        subject = f"milter-{recipient}-{time.monotonic_ns()}"
        self.postfix.sendmail(
            "alice@example.org",
            [recipient, "jane@army.mil"],
            MESSAGE.format(to=f"{recipient}, jane@army.mil", subject=subject),
        )
        delivered = self.sink.wait_for(lambda m: subject.encode() in m.data)
        return recipient not in delivered.recipients  # the milter removed it

    def _common(self) -> list[str]:
        return ["--config", str(self.config), "--db", self.db]


ASKED = ["check", "policy", "serve_policy", "proxy", "milter"]


def _until_every_adapter(adapters: Adapters, recipient: str, *, refuses: bool) -> set[str]:
    """Ask every adapter about ``recipient`` until each refuses it (or each lets it
    through), for at most 30 s: each running adapter re-reads the rules every 2 s. The
    adapters that still do not, by then."""
    pending = set(ASKED)
    deadline = time.monotonic() + 30
    while pending and time.monotonic() < deadline:
        pending = {a for a in pending if getattr(adapters, a)(recipient) is not refuses}
        time.sleep(0.5)
    return pending


def _api(adapters: Adapters) -> ApiClient:
    """The REST API of the ``serve`` process, signed in as its first admin."""
    return ApiClient(
        f"http://127.0.0.1:{adapters.ports['web']}",
        "admin",
        first_admin_password(adapters.serve.log),
    )


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    running = Adapters(tmp_path_factory.mktemp("one-runtime"))
    try:
        yield running.start()
    finally:
        running.stop()


@pytest.mark.parametrize("adapter", ASKED)
def test_every_adapter_flags_the_near_twin_of_a_learned_correspondent(adapters, adapter):
    ask = getattr(adapters, adapter)
    assert ask("orders@acme-crop.com")  # learned from the log only: no list names acme-corp.com
    assert not ask("orders@acme-corp.com")


def test_a_rule_added_through_the_api_reaches_every_running_adapter(adapters):
    for adapter in ASKED:
        assert not getattr(adapters, adapter)("bob@partner-shop.example"), adapter
    api = _api(adapters)
    added = api.post(
        "/api/rules",
        json={"domain": "partner-shop.example", "action": "reject"},
        headers={"X-CSRF-Token": api.csrf_token},
    )
    assert added.status_code == 201, added.text
    assert _until_every_adapter(adapters, "bob@partner-shop.example", refuses=True) == set()
    # The change was picked up by the standalone processes, and said so in their logs.
    for server in adapters.servers[1:]:
        assert "rules changed in the store" in server.log


def test_an_allow_rule_taken_back_through_the_api_takes_back_what_it_taught(adapters):
    # An admin allows army.ml (army.mil is protected); mail to it is delivered, and the
    # running gateways learn it from those deliveries. The admin takes the rule back: every
    # running adapter refuses army.ml again, as it did before the rule.
    api = _api(adapters)
    csrf = {"X-CSRF-Token": api.csrf_token}
    added = api.post("/api/rules", json={"domain": "army.ml", "action": "allow"}, headers=csrf)
    assert added.status_code == 201, added.text
    assert _until_every_adapter(adapters, "bob@army.ml", refuses=False) == set()
    for port in (adapters.ports["policy"], adapters.ports["serve_policy"]):
        for _ in range(5):  # delivered for an authenticated sender: learned as it flows
            answer = policy_answer(port, "bob@army.ml", "ops@example.org", sasl_username="ops")
            assert answer.startswith("action=DUNNO"), answer
    removed = api.delete(f"/api/rules/{added.json()['id']}", headers=csrf)
    assert removed.status_code == 204, removed.text
    assert _until_every_adapter(adapters, "bob@army.ml", refuses=True) == set()


def test_a_rule_added_and_removed_with_the_cli_reaches_every_running_adapter(adapters):
    common = ["--db", adapters.db, "--config", str(adapters.config)]
    for adapter in ASKED:
        assert not getattr(adapters, adapter)("bob@cli-shop.example"), adapter
    said = typogate_output(
        adapters.tmp, "rules", "add", "--domain", "cli-shop.example", "--action", "reject",
        *common,
    )  # fmt: skip
    rule_id = said.split()[1]  # "rule 3 added: ..."
    assert _until_every_adapter(adapters, "bob@cli-shop.example", refuses=True) == set()
    typogate_output(adapters.tmp, "rules", "remove", rule_id, *common)
    assert _until_every_adapter(adapters, "bob@cli-shop.example", refuses=False) == set()
