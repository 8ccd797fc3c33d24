"""The audit of held mail, on the log a real Postfix writes: typogate's policy service holds
three messages; one is released with ``postsuper -H`` and delivered, one deleted with
``postsuper -d``, one stays held. The audit must say which is which, citing the delivery
(with the qmgr sender) for the released one, never the smtpd ``hold:`` line."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from mta import TYPOGATE, Postfix, Server, Sink, postfix_root, swaks
from ports import free_port

pytestmark = [
    pytest.mark.postfix,
    pytest.mark.skipif(shutil.which("postfix") is None, reason="make test installs postfix"),
]

CONFIG = """
[domains]
protected = ["army.mil", "navy.mil", "example.org"]
[actions]
typo = "hold"
"""


def queue_id(answer: str) -> str:
    found = re.search(r"250 2\.0\.0 Ok: queued as (\w+)", answer)
    assert found, answer
    return found.group(1)


def wait_for(postfix: Postfix, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while text not in postfix.log:
        assert time.monotonic() < deadline, f"{text!r} not in the maillog:\n{postfix.log}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def maillog(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The maillog of the three holds, and their queue ids."""
    tmp = tmp_path_factory.mktemp("held")
    sink = Sink(free_port()).start()
    postfix = Postfix(postfix_root(), free_port(), sink.port)
    (tmp / "typogate.toml").write_text(CONFIG)
    port = free_port()
    policy = Server(
        ["policy", "--listen", f"127.0.0.1:{port}", "--config", str(tmp / "typogate.toml")],
        port,
        tmp / "policy.log",
    ).start()
    postfix.settings["smtpd_recipient_restrictions"] = (
        f"check_policy_service {{ inet:127.0.0.1:{port}, default_action=DUNNO }}"
    )
    try:
        postfix.start()
        smtpd = postfix.smtpd_port
        ids = {
            "released": queue_id(
                swaks(smtpd, "alice@example.org", ["bob@army.ml", "carl@army.mil"]).stdout
            ),
            "held": queue_id(swaks(smtpd, "dave@example.org", ["eve@army.ml"]).stdout),
            "deleted": queue_id(swaks(smtpd, "frank@example.org", ["gus@navy.ml"]).stdout),
        }
        for qid in ids.values():
            wait_for(postfix, f"{qid}: hold: RCPT from")
        assert all(f"{qid}!" in postfix.queue() for qid in ids.values())  # "!": on hold
        time.sleep(1.1)  # the release and delivery a second later than the hold
        postfix.postsuper("-H", ids["released"])
        postfix.postsuper("-d", ids["deleted"])
        postfix.flush()
        sink.wait_for(lambda m: "bob@army.ml" in m.recipients)
        wait_for(postfix, f"{ids['released']}: removed")
        log = tmp / "maillog"
        log.write_text(postfix.log)
        yield log, ids
    finally:
        postfix.remove()
        policy.stop()
        sink.stop()


def test_held_released_and_deleted_mail_in_the_audit(maillog):
    log, ids = maillog
    lines = log.read_text().splitlines()
    done = subprocess.run(
        [TYPOGATE, "audit", str(log), "--config", str(log.parent / "typogate.toml")]
        + ["--out", str(log.parent / "out"), "--workers", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    with open(log.parent / "out" / "findings.csv", newline="") as handle:
        rows = {row["recipient"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"bob@army.ml", "eve@army.ml", "gus@navy.ml"}

    def cited(row: dict[str, str]) -> str:
        return lines[int(row["source"].rsplit(":", 1)[1]) - 1]

    released = rows["bob@army.ml"]
    assert released["status"] == "sent"
    assert released["sender"] == "alice@example.org"  # from qmgr, after the release
    delivery = cited(released)
    assert f"{ids['released']}: to=<bob@army.ml>" in delivery and "status=sent" in delivery
    assert delivery.startswith(released["time"])  # the delivery's time, not the hold's

    held = rows["eve@army.ml"]
    assert (held["status"], held["sender"]) == ("held", "dave@example.org")
    assert f"{ids['held']}: hold: RCPT from" in cited(held)

    deleted = rows["gus@navy.ml"]
    assert (deleted["status"], deleted["sender"]) == ("deleted", "frank@example.org")
    assert f"{ids['deleted']}: hold: RCPT from" in cited(deleted)
    # And in the summary: one leak (the released one), nothing held counted as sent.
    summary = (log.parent / "out" / "summary.json").read_text()
    assert '"leaks": 1' in summary
    assert '"held": 1' in summary and '"deleted": 1' in summary


def test_hold_and_release_in_different_rotated_files(maillog):
    """The hold line in mail.log.1, the release and the delivery in mail.log: files are
    read newest name first, yet the delivery still outranks the hold."""
    log, ids = maillog
    text = log.read_text()
    cut = text.index(f"{ids['released']}: released from hold")
    cut = text.rindex("\n", 0, cut) + 1
    rotated = log.parent / "rotated"
    rotated.mkdir(exist_ok=True)
    (rotated / "mail.log.1").write_text(text[:cut])
    (rotated / "mail.log").write_text(text[cut:])
    done = subprocess.run(
        [TYPOGATE, "audit", "mail.log.1", "mail.log", "--config", str(log.parent / "typogate.toml")]
        + ["--out", "out", "--workers", "2", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=rotated,
    )
    assert done.returncode == 0, done.stderr
    with open(rotated / "out" / "findings.csv", newline="") as handle:
        got = {(r["recipient"], r["status"], r["sender"]) for r in csv.DictReader(handle)}
    assert got == {
        ("bob@army.ml", "sent", "alice@example.org"),
        ("eve@army.ml", "held", "dave@example.org"),
        ("gus@navy.ml", "deleted", "frank@example.org"),
    }
