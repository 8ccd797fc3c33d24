"""The monitor's findings reach the gateway: a look-alike it found taking mail is acted on
sooner by every command on the same store."""

from __future__ import annotations

import json
import subprocess

from dns_server import DnsServer
from mta import TYPOGATE


def _check(tmp_path, db: str | None, recipient: str) -> dict:
    store = ["--db", db] if db else []  # check reads a store; it never makes one
    done = subprocess.run(
        [TYPOGATE, "check", "--json", "--protect", "protected.txt", *store, recipient],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, check=True,
    )  # fmt: skip
    return json.loads(done.stdout)


def test_a_look_alike_found_taking_mail_is_acted_on_sooner(tmp_path):
    (tmp_path / "protected.txt").write_text("army.mil\n")
    db = f"sqlite:///{tmp_path / 'store.db'}"
    before = _check(tmp_path, None, "orders@arm.mil")  # the store is not there yet
    assert before["action"] == "warn"  # a short name: a possible slip, not a likely one
    zones = {"arm.mil": "@ MX 10 mail.arm.mil.\nmail A 192.0.2.30\n"}
    with DnsServer(zones) as server:
        done = subprocess.run(
            [TYPOGATE, "monitor", "--protect", "protected.txt", "--nameserver",
             server.nameserver, "--db", db, "--json"],
            capture_output=True, text=True, timeout=120, cwd=tmp_path,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    found = {json.loads(line)["domain"]: json.loads(line) for line in done.stdout.splitlines()}
    assert found["arm.mil"]["state"] == "mx"
    after = _check(tmp_path, db, "orders@arm.mil")
    assert (after["action"], after["reason"]) == ("reject", "typo.live_lookalike")
