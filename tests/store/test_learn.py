"""`typogate learn` seeds correspondents from a Postfix log; the Guard then uses them."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest
from postfix_lines import inbound_line, outbound_line

from typogate import Config, Guard
from typogate.store import Store

TYPOGATE = str(Path(sys.executable).with_name("typogate"))

LOG = "".join(
    f"Mar  1 10:{i:02d}:00 mx1 postfix/qmgr[90]: A{i:03X}: from=<ops@example.org>, size=900, nrcpt=1 (queue active)\n"  # noqa: E501
    f"Mar  1 10:{i:02d}:01 mx1 postfix/smtp[91]: A{i:03X}: to=<orders@acme-corp.com>, relay=mx.acme-corp.com[203.0.113.4]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, status={'sent' if i % 10 else 'bounced'} (250 ok)\n"  # noqa: E501
    for i in range(50)
)


def test_learn_from_rotated_logs_then_guard_flags_the_twin(tmp_path: Path):
    (tmp_path / "mail.log").write_text(LOG)
    with gzip.open(tmp_path / "mail.log.1.gz", "wt") as handle:
        handle.write(LOG)
    db = f"sqlite:///{tmp_path / 'typogate.db'}"
    done = subprocess.run(
        [TYPOGATE, "learn", "mail.log.1.gz", "mail.log", "--db", db],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "90 deliveries to 1 domains" in done.stderr
    store = Store(db)
    counts = store.history.correspondent_counts()
    store.close()
    assert counts == {"acme-corp.com": 90}  # bounced deliveries teach nothing
    guard = Guard(Config(domains={"protected": ["example.org"]}))
    guard.learn(counts)
    assert guard.evaluate("x@acme-crop.com").suggestion == "acme-corp.com"


def test_learn_missing_file_is_bad_usage(tmp_path: Path):
    done = subprocess.run(
        [TYPOGATE, "learn", "nope.log"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_delivery_to_no_domain_name_teaches_nothing(backend, tmp_path: Path, request):
    """Before: behind a relay host, Postfix logs status=sent for any text after the @-sign
    (the relay took it). On PostgreSQL a "domain" past 255 characters made `typogate learn`
    end in a traceback, learning nothing from the whole log; on SQLite it became a
    correspondent, as did a name with a byte that is not UTF-8. Now what is no domain
    name teaches nothing, and the rest of the log is learned."""
    if backend == "postgres":
        db = request.getfixturevalue("postgres").url
    else:
        db = f"sqlite:///{tmp_path / 'typogate.db'}"
    far = "a" * 250 + ".example.com"
    lines = [
        outbound_line(1, "ops@example.org", f"bob@{far}"),
        outbound_line(2, "ops@example.org", "bob@partner.example"),
        outbound_line(3, "ops@example.org", "bob@odd..example"),
    ]
    lines.append(inbound_line(5, f"bob@{far}", "ops@example.org"))  # a reply, it seems
    (tmp_path / "mail.log").write_bytes(
        "".join(lines).encode() + outbound_line(4, "ops@example.org", "bob@x").encode()
        .replace(b"bob@x", b"bob@ba\xffd.example")
    )  # fmt: skip
    done = subprocess.run(
        [TYPOGATE, "learn", "mail.log", "--db", db],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    store = Store(db)
    counts = store.history.correspondent_counts()
    store.close()
    assert counts == {"partner.example": 1}
