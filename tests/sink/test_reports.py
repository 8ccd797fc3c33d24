"""Reports: what a running sink recorded, summed per intended domain by ``typogate sink
report``, and the daily report mailed once to the contact the organisation registered."""

from __future__ import annotations

import json
import os
import smtplib
import subprocess
from datetime import UTC, datetime, timedelta

from mta import TYPOGATE, Sink
from ports import free_port
from sink_process import refused_from_odd_sender

from typogate.store import Store
from typogate.store.sink_log import SinkLog, SinkOutcome, SinkRecord

CONTACT = """report_relay = "127.0.0.1:{port}"
report_hour = 0
[[sink.reports]]
intended = "army.mil"
contact = "typo-reports@army.mil"
"""


def record_yesterday(db: str, records: list[tuple[str, str, str, str]]) -> None:
    """Put (local hash, sender domain, client address, look-alike) records of yesterday
    into the store through the sink's own log, as a sink running then would have."""
    store = Store(db, writer=False)
    sink_log = SinkLog(store.engine).start()
    when = datetime.now(UTC) - timedelta(days=1)
    for local_hash, sender_domain, address, lookalike in records:
        sink_log.record(
            SinkRecord(
                time=when,
                client_address=address,
                client_range=address.rpartition(".")[0] + ".0/24",
                helo="mx.sender.example",
                sender_domain=sender_domain,
                local_hash=local_hash,
                recipient=None,
                lookalike=lookalike,
                intended="army.mil",
                outcome=SinkOutcome.HINT,
                reply="550 5.1.2 <*@army.ml>: ...",
            )
        )
    sink_log.close()
    store.close()


def typogate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TYPOGATE, *args], capture_output=True, text=True, timeout=60)


def test_the_daily_report_reaches_the_registered_contact_once(sink_in, tmp_path):
    mailbox = Sink(free_port()).start()
    try:
        db = f"sqlite:///{tmp_path / 'sink' / 'sink.db'}"
        (tmp_path / "sink").mkdir()
        record_yesterday(
            db,
            [
                ("h1", "contractor.example", "198.51.100.7", "army.ml"),
                ("h1", "contractor.example", "198.51.100.9", "army.ml"),
                ("h2", "home.example", "203.0.113.5", "arrny.mil"),
            ],
        )
        # The running sink sends what is due when it starts (then hourly).
        sink = sink_in(extra=CONTACT.format(port=mailbox.port), db=db)
        delivered = mailbox.wait_for(lambda m: m.recipients == ["typo-reports@army.mil"])
        message = delivered.headers
        yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
        assert message["Subject"] == (f"Misdirected mail for army.mil: 3 message(s) on {yesterday}")
        summary, attachment = [p for p in message.walk() if not p.is_multipart()]
        text = " ".join(summary.get_payload(decode=True).decode().split())
        assert "3 message(s) to 2 different recipient(s)" in text
        assert "contractor.example" in text
        assert attachment.get_content_type() == "application/json"
        report = json.loads(attachment.get_payload(decode=True))
        assert report["report"]["intended"] == "army.mil"
        assert report["report"]["since"] == report["report"]["until"] == yesterday
        assert report["messages"] == 3 and report["recipients"] == 2
        assert report["by_lookalike"] == [
            {"lookalike": "army.ml", "messages": 2},
            {"lookalike": "arrny.mil", "messages": 1},
        ]
        assert report["by_sender_domain"][0] == {
            "sender_domain": "contractor.example",
            "messages": 2,
        }
        assert report["by_client_range"][0] == {
            "client_range": "198.51.100.0/24",
            "messages": 2,
        }
        assert report["by_day"] == [{"day": yesterday, "messages": 3}]

        # Sending again (by hand, or by another instance) sends nothing twice.
        again = typogate(
            "sink", "report", "--since", yesterday, "--send", "--json",
            "--db", db, "--config", str(sink.config),
        )  # fmt: skip
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout) == []
        assert len(mailbox.to("typo-reports@army.mil")) == 1
    finally:
        mailbox.stop()


def test_report_counts_what_the_sink_answered(sink_in):
    sink = sink_in()
    senders = [("ann@contractor.example", "john@army.ml"), ("bo@home.example", "jim@army.ml")]
    senders += [("cy@home.example", "sue@navy.ml"), ("di@home.example", "x@qwzxkv.ml")]
    for sender, recipient in senders:
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as client:
            client.ehlo("mx.sender.example")
            client.mail(sender)
            assert client.rcpt(recipient)[0] == 550
    sink.stop()  # written on the way out
    today = datetime.now(UTC).date().isoformat()
    done = typogate(
        "sink", "report", "--since", today, "--json", "--db", sink.db, "--config", str(sink.config)
    )
    assert done.returncode == 0, done.stderr
    reports = {r["report"]["intended"]: r for r in json.loads(done.stdout)}
    # The recipient at qwzxkv.ml meant nothing served: no organisation's report counts it.
    assert set(reports) == {"army.mil", "navy.mil"}
    army = reports["army.mil"]
    assert (army["messages"], army["recipients"]) == (2, 2)
    assert army["by_sender_domain"] == [
        {"sender_domain": "contractor.example", "messages": 1},
        {"sender_domain": "home.example", "messages": 1},
    ]
    assert army["by_client_range"] == [{"client_range": "127.0.0.0/24", "messages": 2}]
    table = typogate(
        "sink", "report", "--since", today, "--db", sink.db, "--config", str(sink.config)
    )
    assert table.returncode == 0
    assert "army.mil" in table.stdout and "navy.mil" in table.stdout

    bad = typogate("sink", "report", "--since", "yesterday", "--db", sink.db)
    assert bad.returncode == 2
    assert "expected a date" in bad.stderr


def test_a_strangers_mail_from_cannot_drive_the_admins_terminal(sink_in):
    """Before: the sink kept what a stranger wrote after MAIL FROM's @ as it came, and
    `typogate sink report` played it: ESC c reset the admin's terminal, and a
    right-to-left override (U+202E) ran the rest of the row backwards. Now each is shown as
    its escape; the JSON keeps the text as it came, in JSON's own escapes."""
    sink = sink_in()
    refused_from_odd_sender(sink.port)
    sink.stop()  # written on the way out
    today = datetime.now(UTC).date().isoformat()
    args = ("sink", "report", "--since", today, "--db", sink.db, "--config", str(sink.config))
    listed = subprocess.run(
        [TYPOGATE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert listed.returncode == 0, listed.stderr
    assert "\x1b" not in listed.stdout and "\u202e" not in listed.stdout, repr(listed.stdout)
    assert "home\\x1bc\\u202elpmaxe.example (1)" in listed.stdout, listed.stdout
    machines = json.loads(typogate(*args, "--json").stdout)
    domains = [d["sender_domain"] for d in machines[0]["by_sender_domain"]]
    assert domains == ["home\x1bc\u202elpmaxe.example"]


def test_the_mailed_report_shows_a_strangers_text_as_escapes(sink_in, tmp_path):
    """Before: the report's plain text listed a sending domain as the stranger wrote it, so
    the intended organisation's people read it with the escape sequence and the direction
    override in it; the JSON attachment keeps it as it came."""
    mailbox = Sink(free_port()).start()
    try:
        db = f"sqlite:///{tmp_path / 'sink' / 'sink.db'}"
        (tmp_path / "sink").mkdir()
        odd = "home\x1bc\u202elpmaxe.example"
        record_yesterday(db, [("h1", odd, "198.51.100.7", "army.ml")])
        sink_in(extra=CONTACT.format(port=mailbox.port), db=db)
        delivered = mailbox.wait_for(lambda m: m.recipients == ["typo-reports@army.mil"])
        summary, attachment = [p for p in delivered.headers.walk() if not p.is_multipart()]
        text = summary.get_payload(decode=True).decode()
        assert "\x1b" not in text and "\u202e" not in text, repr(text)
        assert "home\\x1bc\\u202elpmaxe.example" in text, text
        report = json.loads(attachment.get_payload(decode=True))
        assert report["by_sender_domain"][0]["sender_domain"] == odd
    finally:
        mailbox.stop()
