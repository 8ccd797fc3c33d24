"""`typogate learn` seeds correspondents from a Postfix log; the Guard then uses them."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

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
