"""`typogate learn` seeds correspondents from a Postfix log; the Guard then uses them."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from mta import Server, read_policy_answer
from ports import free_port
from postfix_lines import inbound_line, outbound_line

from typogate import Config, Guard
from typogate.store import Store

TYPOGATE = str(Path(sys.executable).with_name("typogate"))

LOG = "".join(
    f"Mar  1 10:{i:02d}:00 mx1 postfix/qmgr[90]: A{i:03X}: from=<ops@example.org>, size=900, nrcpt=1 (queue active)\n"  # noqa: E501
    f"Mar  1 10:{i:02d}:01 mx1 postfix/smtp[91]: A{i:03X}: to=<orders@acme-corp.com>, relay=mx.acme-corp.com[203.0.113.4]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, status={'sent' if i % 10 else 'bounced'} (250 ok)\n"  # noqa: E501
    for i in range(50)
)


def _learning(
    db: str, folder: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``typogate learn`` with ``args`` into ``db``, run in ``folder``, done."""
    return subprocess.run(
        [TYPOGATE, "learn", *args, "--db", db],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def _learned(db: str, folder: Path, *args: str, env: dict[str, str] | None = None) -> dict:
    """What ``typogate learn --json`` with ``args`` into ``db`` said, run in ``folder``."""
    done = _learning(db, folder, *args, "--json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_learn_from_rotated_logs_then_guard_flags_the_twin(tmp_path: Path):
    (tmp_path / "mail.log").write_text(LOG)
    with gzip.open(tmp_path / "mail.log.1.gz", "wt") as handle:
        handle.write(LOG.replace("Mar  1", "Feb 22"))  # last week's mail
    db = f"sqlite:///{tmp_path / 'typogate.db'}"
    done = _learning(db, tmp_path, "mail.log.1.gz", "mail.log")
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
    done = _learning(db, tmp_path, "mail.log")
    assert done.returncode == 0, done.stderr
    store = Store(db)
    counts = store.history.correspondent_counts()
    store.close()
    assert counts == {"partner.example": 1}


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_learning_the_same_logs_again_counts_only_what_is_new(backend, tmp_path: Path, request):
    """Before: every run of `typogate learn` added all it read, so the nightly
    `typogate learn /var/log/mail.log*` an admin sets up counted last week's mail again
    each night (one delivery to a slip became two: a sender's relationship). Now a log is
    read on from where the last run stopped, through rotation and compression, and a line
    still being written waits for the next run."""
    if backend == "postgres":
        db = request.getfixturevalue("postgres").url
    else:
        db = f"sqlite:///{tmp_path / 'typogate.db'}"

    def learn(*args: str) -> dict:
        return _learned(db, tmp_path, *args)

    def partner() -> int:
        store = Store(db)
        counts = store.history.correspondent_counts()
        store.close()
        return counts.get("partner.example", 0)

    def to_partner(n: int) -> str:
        return outbound_line(n, "ops@example.org", "bob@partner.example")

    log = tmp_path / "mail.log"
    log.write_text("".join(to_partner(n) for n in (1, 2, 3)))
    assert learn("mail.log")["deliveries"] == 3
    again = learn("mail.log")
    assert (again["deliveries"], partner()) == (0, 3)
    assert again["read_before"] == [
        {"path": "mail.log", "bytes": log.stat().st_size, "same_as": None}
    ]
    writing = to_partner(6)
    with log.open("a") as handle:  # two more, and one Postfix is writing as learn reads
        handle.write(to_partner(4) + to_partner(5) + writing[:-20])
    assert (learn("mail.log")["deliveries"], partner()) == (2, 5)
    with log.open("a") as handle:
        handle.write(writing[-20:])
    # Rotated: mail.log compressed to mail.log.1.gz, and a new mail.log begun.
    with gzip.open(tmp_path / "mail.log.1.gz", "wb") as packed:
        packed.write(log.read_bytes())
    log.write_text(to_partner(7))
    rotated = learn("mail.log.1.gz", "mail.log")
    assert (rotated["deliveries"], partner()) == (2, 7)
    # The table of what was refused is of all the logs show, whichever run learned it.
    assert learn("mail.log.1.gz", "mail.log")["deliveries"] == 0
    assert partner() == 7
    assert learn("mail.log.1.gz", "mail.log", "--again")["deliveries"] == 7
    assert partner() == 14


# What a store says when it cannot write the last row of a run: a disk that filled up.
_REFUSE = {
    "sqlite": [
        "CREATE TRIGGER disk_full BEFORE INSERT ON learned_logs "
        "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
    ],
    "postgres": [
        "CREATE OR REPLACE FUNCTION disk_full() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'; END $$",
        "CREATE TRIGGER disk_full BEFORE INSERT ON learned_logs "
        "FOR EACH ROW EXECUTE FUNCTION disk_full()",
    ],
}


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_run_the_store_cannot_finish_learns_nothing(backend, tmp_path: Path, request):
    """Before: `typogate learn` wrote the deliveries, then the replies with how far each
    log was read. A store that refused the second write (full, or gone) kept the first,
    with a traceback, and the next run counted those deliveries again: three to a
    partner became six. Now a run is one transaction: all of it is learned, or nothing,
    and it says so in a line."""
    if backend == "postgres":
        db = request.getfixturevalue("postgres").url
    else:
        db = f"sqlite:///{tmp_path / 'typogate.db'}"
    (tmp_path / "mail.log").write_text(
        "".join(outbound_line(n, "ops@example.org", "bob@partner.example") for n in (1, 2, 3))
        + inbound_line(4, "bob@partner.example", "ops@example.org")
    )

    def learn() -> subprocess.CompletedProcess[str]:
        return _learning(db, tmp_path, "mail.log")

    def partner() -> tuple[int, int]:
        store = Store(db)
        try:
            found = [
                (c.count, c.received)
                for c in store.history.relationships()
                if (c.sender, c.recipient_domain) == ("*", "partner.example")
            ]
        finally:
            store.close()
        return found[0] if found else (0, 0)

    store = Store(db)
    with store.engine.begin() as connection:
        for statement in _REFUSE[backend]:
            connection.exec_driver_sql(statement)
    store.close()
    refused = learn()
    assert refused.returncode == 1, refused.stderr
    assert "Traceback" not in refused.stderr, refused.stderr
    assert "nothing from this run was learned" in refused.stderr, refused.stderr
    assert partner() == (0, 0)
    store = Store(db)
    with store.engine.begin() as connection:
        connection.exec_driver_sql(
            "DROP TRIGGER disk_full" + (" ON learned_logs" * (backend == "postgres"))
        )
    store.close()
    done = learn()
    assert done.returncode == 0, done.stderr
    assert partner() == (3, 1)
    # The list of refusals for /pairs is written after, alone: a store that refuses it
    # keeps the learning, and the next run keeps the list.
    with (tmp_path / "mail.log").open("a") as log:
        log.write(outbound_line(5, "ops@example.org", "sam@army.ml"))
    store = Store(db)
    with store.engine.begin() as connection:
        for statement in _REFUSE[backend]:
            connection.exec_driver_sql(statement.replace("learned_logs", "learn_refusals"))
    store.close()
    done = learn()
    assert done.returncode == 0, done.stderr
    assert "not kept for /pairs" in done.stderr and "Traceback" not in done.stderr
    assert "army.ml" in done.stdout
    drop = "DROP TRIGGER disk_full" + " ON learn_refusals" * (backend == "postgres")
    store = Store(db)
    with store.engine.begin() as connection:
        connection.exec_driver_sql(drop)
    store.close()
    assert learn().returncode == 0
    store = Store(db)
    try:
        assert [r.domain for r in store.history.learn_refusals()] == ["army.ml"]
    finally:
        store.close()


# Time zones as POSIX writes them (no tzdata needed), each with its offset from UTC.
_ZONES = {"UTC0": 0, "ABC+10": -10, "XYZ-11": 11}


def test_learn_leaves_the_mail_a_gateway_judged_to_the_gateway(tmp_path: Path):
    """Before: learn counted every line of the logs given, those of the mail a running
    gateway had judged, and learned from as it passed, too: an admin who ran it a week
    after going live counted that week twice. Now a line dated on or after the first day
    typogate judged mail in this store is left out, and said so; --all-dates counts it.
    A syslog log is dated in the machine's time zone, the store's day in UTC: west of
    UTC, that day begins on the local day before, and learn leaves out from then."""
    gateway = tmp_path / "gateway.db"
    port = free_port()
    policy = Server(
        ["policy", "--listen", f"127.0.0.1:{port}", "--db", f"sqlite:///{gateway}"],
        port,
        tmp_path / "policy.log",
    ).start()
    first = datetime.now(UTC)  # the store's first verdict is of this day, or the next
    try:  # one message to partner.example through the gateway
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.sendall(
                b"request=smtpd_access_policy\nprotocol_state=RCPT\nsasl_username=ops\n"
                b"sender=ops@example.org\nrecipient=bob@partner.example\n\n"
            )
            assert b"action=DUNNO" in read_policy_answer(client)
    finally:
        policy.stop()
    last = datetime.now(UTC)
    for zone in _ZONES:
        _learn_a_gateways_log_in(zone, tmp_path, gateway, (first, last))


def _learn_a_gateways_log_in(
    zone: str, folder: Path, gateway: Path, verdict: tuple[datetime, datetime]
) -> None:
    """Learn, with the machine's clock in ``zone``, a log of three deliveries four days
    ago and two today, and a reply today, into a copy of ``gateway``'s store, whose first
    verdict was given between the two times of ``verdict``."""
    offset = timedelta(hours=_ZONES[zone])
    db = f"sqlite:///{folder / zone}.db"
    shutil.copyfile(gateway, folder / f"{zone}.db")
    today = (verdict[1] + offset).date()  # as syslog dates the lines: in the machine's zone

    def on(day: date, line: str) -> str:
        return line.replace("Mar  1", f"{day:%b} {day.day:2d}")

    ops, bob = "ops@example.org", "bob@partner.example"
    sent = [(today - timedelta(days=4) if n < 4 else today, n) for n in range(1, 6)]
    (folder / "mail.log").write_text(
        "".join(on(day, outbound_line(n, ops, bob)) for day, n in sent)
        + on(today, inbound_line(6, bob, ops))
    )

    def learn(*args: str) -> dict:
        return _learned(db, folder, "mail.log", *args, env={**os.environ, "TZ": zone})

    def partner() -> int:
        store = Store(db)
        try:
            return store.history.correspondent_counts().get("partner.example", 0)
        finally:
            store.close()

    assert partner() == 1  # what the gateway learned as the message passed
    learned = learn()
    assert (learned["deliveries"], learned["received"]) == (3, 0), zone
    # The first local day that holds a moment of the store's first (UTC) day.
    began = {
        f"{(datetime.combine(moment.date(), datetime.min.time()) + offset).date()}"
        for moment in verdict
    }
    assert learned["judged"]["since"] in began, zone
    assert (learned["judged"]["deliveries"], learned["judged"]["received"]) == (2, 1)
    assert partner() == 4
    learned = learn("--all-dates", "--again")
    assert (learned["deliveries"], learned["received"], learned["judged"]) == (5, 1, None)
    assert partner() == 9


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_two_runs_at_once_over_the_same_log_count_it_once(backend, tmp_path: Path, request):
    """Before: two `typogate learn` runs started together (a nightly job, and an admin's
    run by hand) both read the log from where the store said, and both counted it:
    twice the deliveries. Now each stores how far it read only if no run stored the same
    log meanwhile; the other learns nothing and says so, or, when it started after the
    first had finished, finds nothing new."""
    if backend == "postgres":
        db = request.getfixturevalue("postgres").url
    else:
        db = f"sqlite:///{tmp_path / 'typogate.db'}"
    Store(db).close()
    # Both runs read the store's positions at their start, a second or more before either
    # writes: they overlap whatever the log's size, which is kept small for the tests
    # beside this one on the same cores.
    messages = 4_000
    (tmp_path / "mail.log").write_text(
        "".join(outbound_line(n, f"u{n % 50}@example.org", f"b@d{n % 400}.example")
                for n in range(messages))
    )  # fmt: skip
    runs = [
        subprocess.Popen(
            [TYPOGATE, "learn", "mail.log", "--db", db, "--json"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    ended = [run.communicate(timeout=300) for run in runs]
    learned = 0
    for run, (out, err) in zip(runs, ended, strict=True):
        assert "Traceback" not in err, err
        if run.returncode == 0:
            learned += json.loads(out)["deliveries"]
        else:
            assert "another typogate learn stored" in err and run.returncode == 1, err
    store = Store(db)
    try:
        counts = store.history.correspondent_counts()
    finally:
        store.close()
    assert (learned, sum(counts.values())) == (messages, messages)


def test_the_list_for_pairs_keeps_what_earlier_runs_refused_of_other_logs(tmp_path: Path):
    """Before: each run of `typogate learn` replaced the list of refusals /pairs shows
    with its own: an admin who learned last month's archive, then this month's log,
    lost the senders to ask of the first. Now a run replaces what it judged again (its
    domains), and the rest stays."""
    db = f"sqlite:///{tmp_path / 'typogate.db'}"

    def learn(log: str) -> None:
        _learned(db, tmp_path, log)

    def listed() -> list[tuple[str, str, int]]:
        store = Store(db)
        try:
            return sorted(
                (r.domain, r.sender, r.deliveries) for r in store.history.learn_refusals()
            )
        finally:
            store.close()

    (tmp_path / "october.log").write_text(
        outbound_line(1, "ops@example.org", "gen@army.ml")
        + outbound_line(2, "ops@example.org", "gen@army.ml")
    )
    (tmp_path / "november.log").write_text(
        outbound_line(3, "sue@example.org", "kim@navy.ml").replace("Mar  1", "Nov  2")
    )
    learn("october.log")
    assert listed() == [("army.ml", "ops@example.org", 2)]
    learn("november.log")
    assert listed() == [("army.ml", "ops@example.org", 2), ("navy.ml", "sue@example.org", 1)]
    done = subprocess.run(
        [TYPOGATE, "rules", "add", "--domain", "navy.ml", "--action", "allow", "--db", db],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    learn("november.log")  # read before, judged again: navy.ml is allowed now
    assert listed() == [("army.ml", "ops@example.org", 2)]


def _reading(pid: int, path: Path, past: int, before: int) -> bool:
    """Whether process ``pid`` is reading its open file ``path`` between bytes ``past``
    and ``before``: not at its end, where learn looks for the last whole line before it
    opens the store."""
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if Path(os.readlink(fd)) != path:
                continue
            info = Path(f"/proc/{pid}/fdinfo/{fd.name}").read_text()
        except OSError:  # closed meanwhile
            continue
        if past < int(info.split()[1]) < before:  # "pos: N"
            return True
    return False


def test_a_store_gone_while_learn_reads_the_logs_gets_a_line_and_loses_nothing(
    tmp_path: Path, postgres
):
    """Before: PostgreSQL stopped (a restart, a failover) while learn read a long log, and
    the store's first answer after the reading was a traceback. Now one line says the
    store cannot answer and that nothing from this run was learned; run again once the
    store is back, learn counts the log once."""
    Store(postgres.url).close()
    log = tmp_path / "mail.log"
    messages = 60_000  # about 20 MB: a second of reading, light beside the other tests
    log.write_text(
        "".join(outbound_line(n, f"u{n % 50}@example.org", f"b@d{n % 400}.example")
                for n in range(messages))
    )  # fmt: skip
    run = subprocess.Popen(
        [TYPOGATE, "learn", "mail.log", "--db", postgres.url, "--json"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    # Into the log, the store read before; not at its end, which learn reads first.
    while not _reading(run.pid, log, 2 << 20, log.stat().st_size - (2 << 20)):
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()
        time.sleep(0.005)
    postgres.stop()
    out, err = run.communicate(timeout=120)
    assert run.returncode == 1, (out, err)
    assert "Traceback" not in err, err
    assert "the store cannot answer" in err and "nothing from this run was learned" in err
    postgres.start()
    assert _learned(postgres.url, tmp_path, "mail.log")["deliveries"] == messages
    store = Store(postgres.url)
    try:
        assert sum(store.history.correspondent_counts().values()) == messages
    finally:
        store.close()


def test_a_store_gone_after_learn_stored_the_run_says_the_run_is_learned(tmp_path: Path, postgres):
    """After the run is stored, learn reads the store again for the table of what it
    refused. A store that cannot answer then (here: the table it reads renamed away in the
    run's own transaction, which a trigger makes the run's last write do; a stopped server
    says the same line) must not read as a run that learned nothing: the line says the run
    is learned and that running it again makes the table and counts nothing twice. The
    second run shows both."""
    Store(postgres.url).close()
    (tmp_path / "mail.log").write_text(
        "".join(outbound_line(n, "ops@example.org", "bob@partner.example") for n in (1, 2, 3))
        + outbound_line(4, "ops@example.org", "sam@army.ml")
    )
    store = Store(postgres.url)
    with store.engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE FUNCTION away() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "ALTER TABLE correspondents RENAME TO correspondents_away; RETURN NULL; END $$"
        )
        connection.exec_driver_sql(
            "CREATE TRIGGER away AFTER INSERT ON learned_logs FOR EACH ROW EXECUTE FUNCTION away()"
        )
    store.close()
    gone = _learning(postgres.url, tmp_path, "mail.log")
    assert gone.returncode == 1, gone.stderr
    assert "Traceback" not in gone.stderr, gone.stderr
    said = " ".join(gone.stderr.split())
    assert "the store cannot answer" in said, said
    assert "this run was learned, its table not made (run it again for the table" in said
    assert "army.ml" not in gone.stdout
    store = Store(postgres.url)
    with store.engine.begin() as connection:
        connection.exec_driver_sql("DROP TRIGGER away ON learned_logs")
        connection.exec_driver_sql("ALTER TABLE correspondents_away RENAME TO correspondents")
    store.close()
    again = _learned(postgres.url, tmp_path, "mail.log")
    assert again["deliveries"] == 0  # the first run's, stored: nothing counted twice
    assert [r["domain"] for r in again["refused"]] == ["army.ml"]
    store = Store(postgres.url)
    try:
        assert store.history.correspondent_counts()["partner.example"] == 3
    finally:
        store.close()
