"""Hostile and careless audit input: each bad path is named in the report with the reason,
the other paths are read, time stays linear and memory bounded.

Memory is the audit process's own peak RSS (``os.wait4`` on that one child), compared with
the same command on a small file; time is bounded by a generous timeout on inputs that took
minutes to hours before (speed itself is measured in bench/audit.py).
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import random
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import pytest

from typogate.audit import sources
from typogate.audit.sources import Overlong, Part, blocks
from typogate.vocabulary import AuditFormat

TYPOGATE = str(Path(sys.executable).with_name("typogate"))
CONFIG = '[domains]\nprotected = ["army.mil", "navy.mil", "example.org"]\n'
GOOD_LOG = (
    "Jan 14 09:00:01 mx1 postfix/qmgr[90]: 1A1: from=<gen@example.org>, size=2101, nrcpt=1"
    " (queue active)\n"
    "Jan 14 09:00:02 mx1 postfix/smtp[101]: 1A1: to=<j.doe@army.ml>, relay=mx.army.ml"
    "[203.0.113.5]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok)\n"
)


def audit(tmp: Path, *args: str, timeout: float = 120) -> tuple[int, dict, str, int]:
    """Run ``typogate audit ARGS --out out --json`` in ``tmp``: exit status, summary,
    stderr, and the process's own peak resident memory in bytes."""
    (tmp / "typogate.toml").write_text(CONFIG)
    command = [TYPOGATE, "audit", *args, "--config", "typogate.toml", "--out", "out", "--json"]
    with open(tmp / "stdout", "wb") as out, open(tmp / "stderr", "wb") as err:
        process = subprocess.Popen(command, cwd=tmp, stdout=out, stderr=err)
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        process.kill()

    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage
    finally:
        timer.cancel()
    process.returncode = os.waitstatus_to_exitcode(status)
    assert not killed.is_set(), f"typogate audit {args} ran past {timeout} s"
    text = (tmp / "stdout").read_text()
    summary = json.loads(text) if text.strip() else {}
    return process.returncode, summary, (tmp / "stderr").read_text(), usage.ru_maxrss * 1024


def findings(tmp: Path) -> list[dict[str, str]]:
    with open(tmp / "out" / "findings.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def errors(summary: dict) -> dict[str, str]:
    return {Path(e["path"]).name: e["error"] for e in summary["input_errors"]}


def test_a_line_of_a_hundred_thousand_recipients_is_read_in_linear_time(tmp_path: Path):
    """Before: 0.3 MB of repeated to=<a@b.c> on one line took 28 s, growing with the square
    of the line; these two 0.9 MB lines took minutes (audit) and as long again (learn)."""
    repeated = "Jan 14 09:00:03 mx1 postfix/smtp[101]: 2B2: " + "to=<a@b.c>, " * 75_000
    colons = "Jan 14 09:00:04 mx1 postfix/smtp[101]: 3C3" + ": to=<a@b.c>" * 75_000
    first, second = GOOD_LOG.splitlines()
    log = tmp_path / "mail.log"
    log.write_text("\n".join([first, repeated, colons, second]) + "\n")
    status, summary, err, _ = audit(tmp_path, "mail.log", "--workers", "1", timeout=120)
    assert status == 0, err
    [found] = findings(tmp_path)
    assert (found["recipient"], found["sender"], found["status"]) == (
        "j.doe@army.ml",
        "gen@example.org",
        "sent",
    )
    assert found["source"].endswith("mail.log:4")
    assert summary["lines"] == 4 and summary["input_errors"] == []
    learned = subprocess.run(
        [TYPOGATE, "learn", "mail.log", "--db", f"sqlite:///{tmp_path / 'learn.db'}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert learned.returncode == 0, learned.stderr
    assert "learned 1 deliveries to 1 domains" in " ".join(learned.stderr.split())


def _gzip_of_zeros(path: Path, before: str, zeros: int, after: str) -> None:
    """A gzip file of ``before``, ``zeros`` zero bytes on one line, then ``after``: a few
    hundred KB that expand ~1000-fold, written without holding the expanded bytes."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: with the gzip header
    block = bytes(1 << 20)
    with open(path, "wb") as out:
        out.write(packer.compress(before.encode()))
        for _ in range(zeros >> 20):
            out.write(packer.compress(block))
        out.write(packer.compress(b"\n" + after.encode()))
        out.write(packer.flush())


def test_a_gzip_bomb_is_read_in_bounded_memory(tmp_path: Path):
    """Before: a 1 MB gzip expanding to 1 GiB peaked at 2.2 GB and died with MemoryError.
    Here 256 MiB of zeros on one line: skipped as no log line, read a block at a time."""
    after = GOOD_LOG.replace("1A1", "9Z9").replace("j.doe@army.ml", "sam@navy.ml")
    _gzip_of_zeros(tmp_path / "mail.log.1.gz", GOOD_LOG, 256 << 20, after)
    assert (tmp_path / "mail.log.1.gz").stat().st_size < 1 << 20
    with gzip.open(tmp_path / "small.log.gz", "wt") as small:
        small.write(GOOD_LOG)
    status, _, err, baseline = audit(tmp_path, "small.log.gz", "--workers", "1")
    assert status == 0, err
    status, summary, err, peak = audit(tmp_path, "mail.log.1.gz", "--workers", "1")
    assert status == 0, err
    assert sorted(f["recipient"] for f in findings(tmp_path)) == ["j.doe@army.ml", "sam@navy.ml"]
    assert summary["malformed"] == 1
    assert "mail.log.1.gz:3: a line of 268,435,456 bytes" in summary["malformed_examples"][0]
    # A few 4 MiB blocks and one 1 MiB line at most, over what a small file costs.
    assert peak - baseline < 64 << 20, (peak >> 20, baseline >> 20)


def test_a_damaged_gzip_is_named_and_what_came_before_counts(tmp_path: Path):
    whole = gzip.compress((GOOD_LOG * 2000).encode())
    (tmp_path / "cut.log.gz").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "mail.log").write_text(GOOD_LOG.replace("army.ml", "navy.ml"))
    status, summary, err, _ = audit(tmp_path, "cut.log.gz", "mail.log", "--workers", "1")
    assert status == 0, err
    why = errors(summary)["cut.log.gz"]
    assert why.startswith("the compressed file is cut short after line "), why
    assert summary["findings"] == 2 and summary["deliveries"] > 2  # lines before the cut


def test_a_csv_with_a_10_mb_field_is_one_malformed_row_not_the_end_of_the_run(tmp_path: Path):
    """Before: the csv module's field limit error ended the whole run."""
    rows = [
        "When,From,To,Result",
        "2025-05-01,a@example.org,q@navy.ml,delivered",
        '2025-05-02,a@example.org,"' + "x" * 200_000 + '",delivered',  # over csv's limit
        '2025-05-03,a@example.org,"' + "y" * 10_000_000 + '",delivered',  # over a line's
        "2025-05-04,a@example.org,r@navy.ml,delivered",
    ]
    (tmp_path / "tracking.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "mail.log").write_text(GOOD_LOG)
    columns = "time=When,sender=From,recipient=To,status=Result"
    status, summary, err, _ = audit(
        tmp_path, "tracking.csv", "mail.log", "--columns", columns, "--workers", "1"
    )
    assert status == 0, err
    got = sorted(f["recipient"] for f in findings(tmp_path))
    assert got == ["j.doe@army.ml", "q@navy.ml", "r@navy.ml"]
    assert summary["malformed"] == 2
    three, four = sorted(e for e in summary["malformed_examples"] if "tracking.csv" in e)
    assert "tracking.csv:3: field larger than field limit" in three
    assert f"tracking.csv:4: a line of {len(rows[3]):,} characters" in four


@pytest.mark.parametrize("format", [None, "postfix"])
def test_fifo_device_link_loop_and_dangling_link_are_named_and_the_rest_is_read(
    tmp_path: Path, format: str | None
):
    """Before: a FIFO was waited on for ever, /dev/zero read until memory ran out, and a
    link loop reported as "no such file"."""
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "loop-a").symlink_to(tmp_path / "loop-b")
    (tmp_path / "loop-b").symlink_to(tmp_path / "loop-a")
    (tmp_path / "dangling").symlink_to(tmp_path / "gone.log")
    (tmp_path / "mail.log").write_text(GOOD_LOG)
    inputs = ["fifo", "/dev/zero", "loop-a", "dangling", "missing.log", "mail.log"]
    chosen = ["--format", format] if format else []
    status, summary, err, _ = audit(tmp_path, *inputs, *chosen, timeout=60)
    assert status == 0, err
    assert [f["recipient"] for f in findings(tmp_path)] == ["j.doe@army.ml"]
    assert errors(summary) == {
        "fifo": "a FIFO (named pipe), not a file: it would be read for ever",
        "zero": "a character device, not a file: it would be read for ever",
        "loop-a": "a loop of symbolic links",
        "dangling": f"a symbolic link to {tmp_path / 'gone.log'}, which does not exist",
        "missing.log": "no such file or folder",
    }
    # The table names them too.
    table = subprocess.run(
        [TYPOGATE, "audit", *inputs, "--config", "typogate.toml", "--out", "table"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert table.returncode == 0, table.stderr
    assert "not read fifo: a FIFO (named pipe)" in table.stdout
    assert "not read loop-a: a loop of symbolic links" in table.stdout


def test_nothing_readable_is_bad_usage_with_the_reason(tmp_path: Path):
    (tmp_path / "loop-a").symlink_to(tmp_path / "loop-b")
    (tmp_path / "loop-b").symlink_to(tmp_path / "loop-a")
    status, _, err, _ = audit(tmp_path, "loop-a", timeout=60)
    assert status == 2
    assert "loop-a: a loop of symbolic links" in " ".join(err.split())


def test_partitions_cut_anywhere_read_each_line_once(tmp_path: Path, monkeypatch):
    """Whatever the cuts, block size and line lengths: every line in exactly one partition,
    in order, and every line over MAX_LINE reported as one Overlong in its place."""
    monkeypatch.setattr(sources, "MAX_LINE", 50)
    rng = random.Random(7)
    path = tmp_path / "mail.log"
    for _ in range(1500):
        lines = [b"x" * rng.choice([0, 1, 24, 25, 26, 49, 50, 51, 130]) for _ in range(12)]
        data = b"\n".join(lines) + rng.choice([b"", b"\n"])
        path.write_bytes(data)
        cut, block = rng.randint(1, 90), rng.randint(1, 70)
        got: list[bytes | int] = []
        for start in range(0, len(data), cut):
            part = Part(str(path), AuditFormat.POSTFIX, start, min(start + cut, len(data)))
            for piece in blocks(part, block):
                if isinstance(piece, Overlong):
                    got.append(piece.size)
                else:
                    got.extend(piece.removesuffix(b"\n").split(b"\n"))
        expected = [len(line) if len(line) > 50 else line for line in data.split(b"\n")]
        if data.endswith(b"\n"):
            expected.pop()
        assert got == expected, (cut, block, data)
        with gzip.open(tmp_path / "mail.log.gz", "wb") as packed:
            packed.write(data)
        whole = Part(str(tmp_path / "mail.log.gz"), AuditFormat.POSTFIX)
        again: list[bytes | int] = []
        for piece in blocks(whole, block):
            if isinstance(piece, Overlong):
                again.append(piece.size)
            else:
                again.extend(piece.removesuffix(b"\n").split(b"\n"))
        assert again == expected
