# ruff: noqa: E501  (the fixtures are real log lines)
"""typogate audit on hand-written fixtures in the real formats, with exact expected findings,
and the local and Dask engines agreeing on the same input."""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

TYPOGATE = str(Path(sys.executable).with_name("typogate"))

# Oldest first: mail.log.2.gz, mail.log.1, mail.log. The message 7A1 has its from= in
# mail.log.1 and its delivery in mail.log (a join across rotated files).
LOG_2 = """\
Jan 14 09:00:01 mx1 postfix/smtpd[100]: 1A1: client=ws1.example.org[192.0.2.10]
Jan 14 09:00:01 mx1 postfix/qmgr[90]: 1A1: from=<gen.smith@example.org>, size=2101, nrcpt=2 (queue active)
Jan 14 09:00:02 mx1 postfix/smtp[101]: 1A1: to=<j.doe@army.ml>, relay=mx.army.ml[203.0.113.5]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok)
Jan 14 09:00:02 mx1 postfix/smtp[101]: 1A1: to=<k.lee@army.mil>, relay=mx.army.mil[198.51.100.7]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok)
Jan 14 09:00:03 mx1 postfix/qmgr[90]: 1A1: removed
"""
LOG_1 = """\
Feb  2 10:15:00 mx1 postfix/qmgr[90]: 2B2: from=<ops@example.org>, size=900, nrcpt=1 (queue active)
Feb  2 10:15:01 mx1 postfix/smtp[102]: 2B2: to=<help@gmial.com>, relay=none, delay=0.2, delays=0.1/0/0.1/0, dsn=5.4.4, status=bounced (Host or domain name not found)
Feb  2 10:15:02 mx1 postfix/qmgr[90]: 3C3: from=<ceo@example.org>, size=1200, nrcpt=1 (queue active)
Feb  2 10:15:03 mx1 postfix/smtp[103]: 3C3: to=<ann@navy.mil>, relay=mx.navy.mil[198.51.100.8]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 Ok)
Feb 28 23:59:58 mx1 postfix/qmgr[90]: 7A1: from=<travel@example.org>, size=5000, nrcpt=1 (queue active)
"""
LOG_0 = """\
Mar  1 00:00:05 mx1 postfix/smtp[104]: 7A1: to=<colonel@us.af.ml>, relay=mx.us.af.ml[203.0.113.9]:25, delay=7, delays=0.1/0/0.4/6, dsn=4.4.1, status=deferred (connection timed out)
Mar  1 00:30:05 mx1 postfix/smtp[104]: 7A1: to=<colonel@us.af.ml>, relay=mx.us.af.ml[203.0.113.9]:25, delay=1807, delays=1800/0/0.4/6, dsn=2.0.0, status=sent (250 ok)
Mar  1 01:00:00 mx1 postfix/qmgr[90]: 8B8: from=<pay@example.org>, size=700, nrcpt=1 (queue active)
Mar  1 01:00:01 mx1 postfix/smtp[105]: 8B8: to=<bills@outlok.com>, relay=mx.outlok.com[203.0.113.2]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=4.4.2, status=deferred (lost connection)
Mar  1 01:00:02 mx1 postfix/smtp[105]: 9C9: to=<trunc
Mar  1 01:00:02 mx1 postfix/qmgr[90]: 9D9: from=<cut-off@exa
Mar  1 01:00:03 mx1 postfix/smtpd[106]: connect from unknown[192.0.2.99]
"""

CONFIG = """
[domains]
protected = ["army.mil", "navy.mil", "us.af.mil", "gmail.com", "outlook.com", "example.org"]
"""

EXPECTED_POSTFIX = [
    # (recipient, intended, status, source file, line), oldest first, across the rotated
    # files; the deferred-then-sent delivery to us.af.ml counts once, with its last status.
    ("j.doe@army.ml", "army.mil", "sent", "mail.log.2.gz", 3),
    ("help@gmial.com", "gmail.com", "bounced", "mail.log.1", 2),
    ("colonel@us.af.ml", "us.af.mil", "sent", "mail.log", 2),
    ("bills@outlok.com", "outlook.com", "deferred", "mail.log", 4),
]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TYPOGATE, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    (tmp_path / "typogate.toml").write_text(CONFIG)
    folder = tmp_path / "logs"
    folder.mkdir()
    with gzip.open(folder / "mail.log.2.gz", "wt") as handle:
        handle.write(LOG_2)
    (folder / "mail.log.1").write_text(LOG_1)
    (folder / "mail.log").write_text(LOG_0)
    return tmp_path


def findings(out: Path) -> list[dict[str, str]]:
    with open(out / "findings.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_postfix_logs_rotated_and_gzipped(logs: Path):
    done = run(
        "audit",
        "logs/mail.log.2.gz",
        "logs/mail.log.1",
        "logs/mail.log",
        "--config",
        "typogate.toml",
        "--out",
        "out",
        "--workers",
        "1",
        cwd=logs,
    )
    assert done.returncode == 0, done.stderr
    rows = findings(logs / "out")
    got = [
        (
            r["recipient"],
            r["intended_domain"],
            r["status"],
            Path(r["source"].rsplit(":", 1)[0]).name,
            int(r["source"].rsplit(":", 1)[1]),
        )
        for r in rows
    ]
    assert got == EXPECTED_POSTFIX
    senders = {r["recipient"]: r["sender"] for r in rows}
    assert senders["colonel@us.af.ml"] == "travel@example.org"  # joined across files
    assert senders["j.doe@army.ml"] == "gen.smith@example.org"
    summary = json.loads((logs / "out" / "summary.json").read_text())
    assert summary["leaks"] == 2
    assert summary["findings_by_status"] == {"bounced": 1, "deferred": 1, "sent": 2}
    assert summary["malformed"] == 2
    assert "mail.log:5" in summary["malformed_examples"][0]
    assert "mail.log:6" in summary["malformed_examples"][1]
    assert summary["messages"] == 5  # qmgr from= lines: 1A1 2B2 3C3 7A1 8B8
    html = (logs / "out" / "report.html").read_text()
    assert "<script" in html and "Leaks per month" in html
    assert '<script src="http' not in html  # self-contained: plotly.js is inline


def test_local_and_dask_engines_give_identical_findings(logs: Path):
    folder = run("audit", "logs", "--config", "typogate.toml", "--out", "x", cwd=logs)
    assert folder.returncode == 2  # a folder that is not a Maildir: a clear error
    assert "not a Maildir" in folder.stderr
    files = ["logs/mail.log.2.gz", "logs/mail.log.1", "logs/mail.log"]
    common = ["--config", "typogate.toml"]
    whole = run("audit", *files, *common, "--out", "whole", "--workers", "1", cwd=logs)
    # 200-byte partitions: every plain file is cut mid-line, and the from= and to= of one
    # message land in different partitions, on different workers.
    cut = ["--part-bytes", "200", "--workers", "2"]
    local = run("audit", *files, *common, "--out", "local", *cut, cwd=logs)
    dask = run("audit", *files, *common, "--out", "dask", "--engine", "dask", *cut, cwd=logs)
    assert whole.returncode == local.returncode == dask.returncode == 0, dask.stderr
    expected = (logs / "whole" / "findings.csv").read_text()
    assert (logs / "local" / "findings.csv").read_text() == expected
    assert (logs / "dask" / "findings.csv").read_text() == expected
    assert len(findings(logs / "dask")) == 4
    summary = json.loads((logs / "dask" / "summary.json").read_text())
    assert summary["partitions"] > 5 and summary["engine"] == "dask"
    assert summary["malformed"] == 2 and "mail.log:5" in summary["malformed_examples"][0]


MBOX = """\
From gen.smith@example.org Mon Jan 13 09:00:00 2025
From: General Smith <gen.smith@example.org>
To: j.doe@army.ml, k.lee@army.mil
Cc: staff@navy.ml
Date: Mon, 13 Jan 2025 09:00:00 +0000
Subject: travel

hotel room 1204

From ops@example.org Tue Jan 14 10:00:00 2025
From: ops@example.org
To: {many}
Date: Tue, 14 Jan 2025 10:00:00 +0000
Subject: all hands

hello all
"""


def test_mbox_maildir_eml_with_500_recipients_and_a_non_utf8_header(tmp_path: Path):
    (tmp_path / "typogate.toml").write_text(CONFIG)
    many = ", ".join([f"user{i}@army.mil" for i in range(499)] + ["late@gmial.com"])
    (tmp_path / "sent.mbox").write_text(MBOX.format(many=many))
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "cur" / "1700000000.1.host:2,S").write_bytes(
        b"From: a@example.org\nTo: x@outlok.com\nDate: Wed, 05 Mar 2025 12:00:00 +0000\n"
        b"Subject: caf\xe9 \xff\n\nbody\n"
    )
    (tmp_path / "one.eml").write_bytes(
        b"From: b@example.org\nTo: =?utf-8?q?J=C3=B6rg?= <jorg@arny.mil>\nDate: Thu, 06 Mar 2025 08:00:00 +0000\n"
        b"Subject: \xe4\xf6\xfc latin-1 bytes\n\nbody\n"
    )
    (tmp_path / "broken.eml").write_bytes(b"Subject: no recipients at all\n\nbody\n")
    done = run(
        "audit",
        "sent.mbox",
        "Maildir",
        "one.eml",
        "broken.eml",
        "--config",
        "typogate.toml",
        "--out",
        "out",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    got = sorted((r["recipient"], r["intended_domain"]) for r in findings(tmp_path / "out"))
    assert got == [
        ("j.doe@army.ml", "army.mil"),
        ("jorg@arny.mil", "army.mil"),
        ("late@gmial.com", "gmail.com"),
        ("staff@navy.ml", "navy.mil"),
        ("x@outlok.com", "outlook.com"),
    ]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["deliveries"] == 3 + 500 + 1 + 1
    assert summary["malformed"] == 1 and "broken.eml" in summary["malformed_examples"][0]


EXCHANGE = """\
#TYPE Microsoft.Exchange.Management.TransportLogSearchTasks.MessageTrackingEvent
"Timestamp","ClientIp","EventId","Source","Sender","Recipients","MessageSubject","MessageId"
"2025-04-01T09:00:00.000Z","192.0.2.1","RECEIVE","SMTP","a@example.org","j@army.ml;k@army.mil","hi","<1@x>"
"2025-04-01T09:00:01.000Z","192.0.2.1","SEND","SMTP","a@example.org","j@army.ml;k@army.mil","hi","<1@x>"
"2025-04-01T09:05:00.000Z","192.0.2.1","FAIL","SMTP","b@example.org","z@gmial.com","x","<2@x>"
"2025-04-01T09:06:00.000Z","192.0.2.1","SEND","SMTP","b@example.org"
"""


def test_exchange_tracking_csv_and_generic_csv(tmp_path: Path):
    (tmp_path / "typogate.toml").write_text(CONFIG)
    (tmp_path / "tracking.csv").write_text(EXCHANGE)
    (tmp_path / "other.csv").write_text(
        "When,From,To,Result\n2025-05-01,a@example.org,q@navy.ml,delivered\n2025-05-02,a@example.org,r@navy.mil,delivered\n"
    )
    done = run("audit", "tracking.csv", "--config", "typogate.toml", "--out", "ex", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = findings(tmp_path / "ex")
    assert [(r["recipient"], r["status"]) for r in rows] == [
        ("j@army.ml", "sent"),
        ("z@gmial.com", "bounced"),
    ]
    assert json.loads((tmp_path / "ex" / "summary.json").read_text())["malformed"] == 1
    missing = run(
        "audit", "other.csv", "--format", "csv", "--config", "typogate.toml", cwd=tmp_path
    )
    assert missing.returncode == 2 and "--columns" in missing.stderr
    done = run(
        "audit",
        "other.csv",
        "--format",
        "csv",
        "--columns",
        "time=When,sender=From,recipient=To,status=Result",
        "--config",
        "typogate.toml",
        "--out",
        "gen",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert [
        (r["recipient"], r["status"], r["intended_domain"]) for r in findings(tmp_path / "gen")
    ] == [("q@navy.ml", "sent", "navy.mil")]


def test_missing_path_is_bad_usage(tmp_path: Path):
    done = run("audit", "nope.log", cwd=tmp_path)
    assert done.returncode == 2 and "no such file" in done.stderr


def test_two_audits_in_one_process_with_different_configurations_are_independent(tmp_path):
    """A long-lived process (or Dask worker) runs audits under several configurations: the
    second audit must not report the first one's suspect domains."""
    from typogate import Config
    from typogate.audit import run as audit

    (tmp_path / "mail.log").write_text(LOG_2.replace("k.lee@army.mil", "sam@navy.ml"))
    army = Config.from_mapping({"domains": {"protected": ["army.mil"]}})
    navy = Config.from_mapping({"domains": {"protected": ["navy.mil"]}})
    first = audit([tmp_path / "mail.log"], army, workers=1)
    second = audit([tmp_path / "mail.log"], navy, workers=1)
    assert [f.delivery.recipient for f in first.findings] == ["j.doe@army.ml"]
    assert [f.delivery.recipient for f in second.findings] == ["sam@navy.ml"]


def test_a_leak_to_a_domain_with_invisible_characters_is_found(tmp_path: Path):
    # Copied addresses carry U+200B and soft hyphens; Postfix maps them away (UTS #46) and
    # delivers to army.ml, and logs the recipient as it was written.
    (tmp_path / "typogate.toml").write_text(CONFIG)
    (tmp_path / "mail.log").write_text(
        "Mar  1 01:00:00 mx1 postfix/qmgr[90]: 8B8: from=<pay@example.org>, size=700, nrcpt=2 (queue active)\n"
        "Mar  1 01:00:01 mx1 postfix/smtp[105]: 8B8: to=<sue@army\u200b.ml>, relay=mx.army.ml[203.0.113.2]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 ok)\n"
        "Mar  1 01:00:01 mx1 postfix/smtp[105]: 8B8: to=<tom@ar\u00admy.ml>, relay=mx.army.ml[203.0.113.2]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 ok)\n",
        encoding="utf-8",
    )
    done = run("audit", "mail.log", "--config", "typogate.toml", "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    found = [
        (r["recipient"], r["intended_domain"], r["status"]) for r in findings(tmp_path / "out")
    ]
    assert found == [
        ("sue@army\u200b.ml", "army.mil", "sent"),
        ("tom@ar\u00admy.ml", "army.mil", "sent"),
    ]


def test_a_quoted_local_part_is_read_as_postfix_logs_it(tmp_path: Path):
    # Postfix logs a local part that needs quotes with them, spaces and all (seen in a real
    # Postfix's log: tests/gateway/test_release.py sends such mail). It was "malformed".
    (tmp_path / "typogate.toml").write_text(CONFIG)
    (tmp_path / "mail.log").write_text(
        'Mar  1 01:00:00 mx1 postfix/qmgr[90]: 8B8: from=<"pay desk"@example.org>, size=700, nrcpt=2 (queue active)\n'
        'Mar  1 01:00:01 mx1 postfix/smtp[105]: 8B8: to=<"sue doe"@army.ml>, relay=mx.army.ml[203.0.113.2]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 ok)\n'
        'Mar  1 01:00:01 mx1 postfix/smtp[105]: 8B8: to=<"a>b\\"c"@army.ml>, relay=mx.army.ml[203.0.113.2]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 ok)\n'
    )
    done = run("audit", "mail.log", "--config", "typogate.toml", "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    found = [(r["sender"], r["recipient"]) for r in findings(tmp_path / "out")]
    assert found == [
        ('"pay desk"@example.org', '"sue doe"@army.ml'),
        ('"pay desk"@example.org', '"a>b\\"c"@army.ml'),
    ]
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["malformed"] == 0


def test_mail_to_a_domain_typed_without_its_dot_is_found(tmp_path: Path):
    # gmailcom is a bare host: Postfix bounced it, and the audit counted nothing.
    (tmp_path / "typogate.toml").write_text(CONFIG)
    (tmp_path / "mail.log").write_text(
        "Mar  1 01:00:00 mx1 postfix/qmgr[90]: 8B8: from=<pay@example.org>, size=700, nrcpt=1 (queue active)\n"
        "Mar  1 01:00:01 mx1 postfix/smtp[105]: 8B8: to=<sue@gmailcom>, relay=none, delay=0.1, delays=0.1/0/0/0, dsn=5.4.4, status=bounced (Host or domain name not found. Name service error for name=gmailcom type=A: Host not found)\n"
    )
    done = run("audit", "mail.log", "--config", "typogate.toml", "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    found = [
        (r["recipient"], r["intended_domain"], r["status"]) for r in findings(tmp_path / "out")
    ]
    assert found == [("sue@gmailcom", "gmail.com", "bounced")]


def test_a_cell_a_spreadsheet_would_run_is_written_as_text(tmp_path: Path):
    """Before: findings.csv held =1+1@army.ml as it came, and a spreadsheet opening the
    report ran the cell as a formula (CSV injection). Now it reads '=1+1@army.ml."""
    log = tmp_path / "mail.log"
    log.write_text(
        "Mar  2 09:01:00 mx1 postfix/qmgr[90]: A1: from=<-ann@example.org>, size=9, nrcpt=1 (queue active)\n"
        "Mar  2 09:01:01 mx1 postfix/smtp[91]: A1: to=<=1+1@army.ml>, relay=mx.army.ml[203.0.113.5]:25, delay=1, dsn=2.0.0, status=sent (250 Ok)\n"
    )
    done = run("audit", str(log), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (row,) = findings(tmp_path / "out")
    assert (row["recipient"], row["sender"]) == ("'=1+1@army.ml", "'-ann@example.org")
    assert row["intended_domain"] == "army.mil"


def test_a_look_alike_in_another_script_is_shown_with_its_a_label(tmp_path: Path):
    """Before: the summary's top domains and report.html's findings named ivan@аrmy.ml (a
    Cyrillic а) alone, which reads as the very domain it imitates."""
    (tmp_path / "typogate.toml").write_text(CONFIG)
    log = tmp_path / "mail.log"
    log.write_text(
        "Mar  2 09:01:00 mx1 postfix/qmgr[90]: A1: from=<ann@example.org>, size=9, nrcpt=1 (queue active)\n"
        "Mar  2 09:01:01 mx1 postfix/smtp[91]: A1: to=<ivan@\u0430rmy.mil>, relay=none, delay=1, dsn=5.4.4, status=bounced (Host or domain name not found)\n",
        encoding="utf-8",
    )
    done = run("audit", str(log), "--config", "typogate.toml", "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (row,) = findings(tmp_path / "out")
    assert (row["recipient"], row["intended_domain"]) == ("ivan@\u0430rmy.mil", "army.mil")
    assert "xn--rmy-5cd.mil" in done.stdout, done.stdout
    assert "ivan@xn--rmy-5cd.mil" in (tmp_path / "out" / "report.html").read_text()


def test_a_direction_override_in_the_logs_is_shown_as_its_escape(tmp_path: Path):
    """Before: report.html wrote a sender's address from the log as it came; Postfix logs
    a UTF-8 address whole, and a right-to-left override (U+202E) in its local part ran the
    rest of the cell backwards. Now the report shows its escape; findings.csv keeps it."""
    log = tmp_path / "mail.log"
    log.write_text(
        "Mar  2 09:01:00 mx1 postfix/qmgr[90]: A1: from=<ann\u202elim.ymra@example.org>, size=9, nrcpt=1 (queue active)\n"
        "Mar  2 09:01:01 mx1 postfix/smtp[91]: A1: to=<jo\u202eb@army.ml>, relay=mx.army.ml[203.0.113.5]:25, delay=1, dsn=2.0.0, status=sent (250 Ok)\n",
        encoding="utf-8",
    )
    done = run("audit", str(log), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (row,) = findings(tmp_path / "out")
    assert row["recipient"] == "jo\u202eb@army.ml"
    html = (tmp_path / "out" / "report.html").read_text()
    table = html[html.index('<table class="findings">') : html.index("</table>")]
    assert "\u202e" not in table
    assert "jo\\u202eb@army.ml" in table and "ann\\u202elim.ymra@example.org" in table
