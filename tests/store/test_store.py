"""The store against a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from revisions import before, heads, take_back
from sqlalchemy.exc import OperationalError

from typogate import Action, Config, Guard, check
from typogate.store import HeldMessage, Store, VerdictEvent
from typogate.vocabulary import Adapter, Evidence, HoldSource, Mode, SenderSaid


def events(n: int, recipient: str = "jane@army.mil", sender: str = "boss@example.org"):
    verdict = check(recipient)
    return [VerdictEvent.of(verdict, Adapter.POLICY, Mode.ENFORCE, sender=sender) for _ in range(n)]


def held(hold_id: str = "h1") -> HeldMessage:
    return HeldMessage(
        hold_id,
        HoldSource.POSTFIX_HOLD,
        "boss@example.org",
        ("sam@navy.ml",),
        ("blocked.suffix",),
        ("navy.mil",),
        queue_id="4F2A81C0",
    )


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'typogate.db'}"


@pytest.mark.parametrize("keep_allowed", [False, True])
def test_sqlite_file_in_wal_mode_batches_events_and_learns(sqlite_url, tmp_path, keep_allowed):
    from typogate.store.history import History

    store = Store(sqlite_url, keep_allowed=keep_allowed)
    for event in events(2500):
        store.record(event)
        store.observe(event.sender, event.domain, Evidence.SENT)  # a sender the gateway believes
    store.flush()
    # Allowed verdicts are counted; their rows are kept only when asked.
    assert store.history.event_count() == (2500 if keep_allowed else 0)
    assert History(store.engine).by_day(1)[0].allow == 2500
    assert store.history.correspondent_counts() == {"army.mil": 2500}
    assert store.history.correspondent_counts("example.org") == {"army.mil": 2500}
    store.hold(held())
    store.close()
    with sqlite3.connect(tmp_path / "typogate.db") as raw:  # a real file, read back raw
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert (
            raw.execute("SELECT count(*) FROM holds WHERE queue_id='4F2A81C0'").fetchone()[0] == 1
        )


def test_migrations_are_idempotent_and_reopening_keeps_data(sqlite_url):
    store = Store(sqlite_url)
    store.hold(held())
    store.close()
    again = Store(sqlite_url)
    again.migrate()
    assert [h.hold_id for h in again.holds.in_state()] == ["h1"]
    assert again.holds.in_state()[0].recipients == ["sam@navy.ml"]
    again.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_migrations_make_the_tables_the_models_describe(backend, request, sqlite_url):
    """A model changed without its migration (or the other way round) works in the tests
    that make tables from the models, and fails on every store upgraded in the field.
    SQLite's column types are mere affinities (a held message's sender stayed VARCHAR
    there, 0007): types are compared on PostgreSQL only."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from typogate.store.models import Base

    url = request.getfixturevalue("postgres").url if backend == "postgres" else sqlite_url
    store = Store(url, writer=False)
    try:
        with store.engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": backend == "postgres"}
            )
            differences = compare_metadata(context, Base.metadata)
    finally:
        store.close()
    assert differences == []


def test_a_store_at_the_newest_revision_opens_without_alembic(sqlite_url):
    """Before: every command that opened a store imported Alembic to learn that there was
    nothing to migrate, a quarter of `typogate holds`'s start-up."""
    Store(sqlite_url).close()  # made, and migrated, here
    code = (
        "import sys\n"
        "from typogate.store import Store\n"
        f"Store({sqlite_url!r}, writer=False, create=False).close()\n"
        "print('alembic' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False"], done.stderr
    from typogate.store.engine import HEAD

    assert heads() == [HEAD]  # the revision it trusts is the migrations' own


def test_opening_a_store_says_in_one_line_what_its_migrations_did(tmp_path, caplog):
    """Before: typogate said nothing of a schema it upgraded or made in an empty database;
    Alembic's own lines did, one for each step with its whole docstring."""
    from typogate.store.engine import HEAD

    def said(url: str) -> list[str]:
        caplog.clear()
        Store(url, writer=False).close()
        return [r.getMessage() for r in caplog.records if r.name.startswith("typogate")]

    caplog.set_level(logging.INFO)
    path = tmp_path / "typogate.db"
    url = f"sqlite:///{path}"
    assert said(url) == [f"store: made a new, empty store at {path}"]
    store = Store(url, writer=False)
    take_back(store, before(HEAD))  # a store of the version before
    store.close()
    assert said(url) == [f"store: schema upgraded from revision {before(HEAD)} to {HEAD}"]
    assert said(url) == []  # nothing to do, nothing said
    empty = tmp_path / "empty.db"
    empty.touch()  # a database made by its admin, as a PostgreSQL one is
    assert said(f"sqlite:///{empty}") == [f"store: made typogate's tables in sqlite:///{empty}"]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_what_senders_said_is_kept_with_the_links_they_used(backend, tmp_path, request):
    """Before: a used link kept its nonce alone; a sender's confirmation, which ends its
    warnings about a domain, was only in the log."""
    url = (
        request.getfixturevalue("postgres").url
        if backend == "postgres"
        else f"sqlite:///{tmp_path / 'typogate.db'}"
    )
    store = Store(url, writer=False)
    store.hold(held("h1"))
    take_back(store, "0009")  # links used before: a release, and a confirmation
    with store.engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO spent_links (nonce, hold_id, time) VALUES "
            "('n1', 'h1', '2026-11-01 09:00:00+00:00'), ('n2', '', '2026-11-02 09:00:00+00:00')"
        )
    store.close()
    store = Store(url, writer=False)  # the release link gets its hold's sender, recipients
    assert store.holds.spend_link("n3", "", "ann@example.org", ["x@armi.ml", "y@armi.ml"])
    assert not store.holds.spend_link("n3", "", "ann@example.org", ["x@armi.ml"])  # once
    said = [(w.sender, w.said, w.recipients, w.hold_id) for w in store.holds.said()]
    assert said == [
        ("ann@example.org", SenderSaid.CONFIRM, ["x@armi.ml", "y@armi.ml"], None),
        ("boss@example.org", SenderSaid.RELEASE, ["sam@navy.ml"], "h1"),
    ]  # the confirmation from before names no one: not listed
    assert [w.hold_id for w in store.holds.said(limit=1)] == [None]
    store.close()


def test_only_allowed_deliveries_teach_correspondents(sqlite_url):
    store = Store(sqlite_url)
    for event in events(3, "john@army.ml"):  # rejected: not a correspondent
        store.record(event)
    store.flush()
    assert store.history.correspondent_counts() == {}
    store.close()


def test_learned_history_feeds_the_guard(sqlite_url):
    store = Store(sqlite_url)
    store.history.learn({("*", "acme-corp.com"): 400})
    guard = Guard(Config(domains={"protected": ["army.mil"]}))
    assert not guard.evaluate("a@acme-crop.com").is_alert
    guard.learn(store.history.correspondent_counts())
    twin = guard.evaluate("a@acme-crop.com")
    assert twin.is_alert and twin.suggestion == "acme-corp.com"
    assert guard.evaluate("a@acme-corp.com").reason == "allowed.known"
    store.close()


@pytest.mark.postgres
def test_postgresql_server(postgres):
    store = Store(postgres.url, keep_allowed=True)
    for event in events(1200):
        store.record(event)
        store.observe(event.sender, event.domain, Evidence.SENT)
    store.flush()
    assert store.history.event_count() == 1200
    assert store.history.correspondent_counts() == {"army.mil": 1200}
    store.hold(held())
    assert store.holds.in_state()[0].suggestions == ["navy.mil"]
    store.close()


def _writer() -> multiprocessing.Process:
    (writer,) = [p for p in multiprocessing.active_children() if p.name == "typogate-store"]
    return writer


def rejected(n: int) -> list[VerdictEvent]:
    return events(n, recipient="jane@army.ml")  # kept as rows, so event_count() counts them


def test_a_stop_signal_to_the_writer_loses_nothing_still_queued(sqlite_url):
    # Ctrl-C and systemd's control-group stop signal every process, the writer with the
    # gateway's: the writer must still take what the gateway hands over while it closes.
    store = Store(sqlite_url)
    for event in rejected(10):
        store.record(event)
    store.flush()
    writer = _writer()
    os.kill(writer.pid, signal.SIGINT)
    os.kill(writer.pid, signal.SIGTERM)
    for event in rejected(5):
        store.record(event)
    store.close()
    assert writer.exitcode == 0
    assert store.written == 15 and store.dropped == 0
    assert Store(sqlite_url, writer=False).history.event_count() == 15


def test_a_killed_writer_is_replaced_and_the_loss_is_logged(sqlite_url, caplog):
    store = Store(sqlite_url)
    try:
        for event in rejected(3):
            store.record(event)
        store.flush()
        killed = _writer()
        os.kill(killed.pid, signal.SIGKILL)
        killed.join()
        for event in rejected(4):
            store.record(event)  # verdicts go on; a new writer takes these
        store.flush()
        assert _writer().pid != killed.pid
        assert store.history.event_count() == 7
        assert f"writer process {killed.pid} stopped (exit code -9)" in caplog.text
    finally:
        started = time.monotonic()
        store.close()
        assert time.monotonic() - started < 10


@pytest.mark.postgres
def test_dead_database_degrades_to_memory_and_logs(postgres):
    store = Store(postgres.url, keep_allowed=True)
    try:  # closed however the test ends: a writer process left running fails the next tests
        # Made before the clock starts: the first check() in a process loads the default
        # lists (0.2 s idle, over 0.5 s on busy cores), which is not record()'s time.
        recorded = events(500)
        postgres.stop()
        started = time.monotonic()
        for event in recorded:
            store.record(event)  # never raises, never blocks a verdict
        assert time.monotonic() - started < 0.5
        with pytest.raises(OperationalError):
            store.hold(held("h-dead"))  # a hold that cannot be stored is an error the adapter sees
        postgres.start()
        deadline = time.monotonic() + 30
        while store.history.event_count() < 500 and time.monotonic() < deadline:
            time.sleep(0.2)  # the writer retries the queued batch once the server is back
        assert store.history.event_count() == 500
    finally:
        store.close()


@pytest.mark.postgres
def test_a_database_down_for_seconds_is_said_once_and_its_return_too(postgres, capfd):
    """The writer retries every second while the database is down; before, each retry
    wrote its line (six here, 3,600 for an hour's outage). Now: one line when it goes,
    a reminder a minute (not reached here), one when it is back and what waited is
    written. The writer is a process of its own: its lines go to standard error."""
    store = Store(postgres.url, keep_allowed=True)
    try:
        postgres.stop()
        for event in events(20):
            store.record(event)
        time.sleep(6)
        postgres.start()
        store.flush()
        assert store.history.event_count() == 20
    finally:
        store.close()
    said = capfd.readouterr().err.splitlines()
    [down] = [line for line in said if "cannot write" in line]
    assert re.match(r"store: cannot write \d+ events \(will retry", down), down
    [back] = [line for line in said if "back after" in line]
    assert back.startswith("store: the database is back after ")


@pytest.mark.postgres
def test_a_gateway_following_a_dead_store_keeps_its_rules_and_says_when_it_is_back(
    postgres, caplog
):
    """A running gateway asks the store for its rules every few seconds. While the store
    is down it judges with those in use and says so once; before, it never said that the
    store answered again, so its log ended on the error. Once back, a rule stored since
    applies."""
    from typogate.config import Rule
    from typogate.runtime import Runtime

    Store(postgres.url).close()
    runtime = Runtime.open(Config(), postgres.url)
    try:
        assert runtime.guard.judge_domain("army.ml").action is Action.REJECT
        with caplog.at_level(logging.INFO, logger="typogate.runtime"):
            watcher = runtime.watch(every=0.05)
            watcher.start()
            try:
                postgres.stop()
                time.sleep(1.0)  # twenty looks at a dead store
                postgres.start()
                admin = Store(postgres.url, writer=False)
                admin.rules.save(Rule(domain="army.ml", action=Action.ALLOW), "admin")
                admin.close()
                deadline = time.monotonic() + 20
                while runtime.guard.judge_domain("army.ml").action is not Action.ALLOW:
                    assert time.monotonic() < deadline, caplog.text
                    time.sleep(0.05)
            finally:
                watcher.stop()
    finally:
        runtime.close()
    said = [r.getMessage() for r in caplog.records if r.name == "typogate.runtime"]
    assert len([line for line in said if "cannot read rules" in line]) == 1, said
    [back] = [line for line in said if "answers again" in line]
    assert back.startswith("store: the database answers again after ")


def test_an_outage_of_minutes_is_said_once_a_minute(caplog):
    """The reminder, on a clock the test turns (an outage of minutes is too long to wait
    for): a failed write each second for 150 s gives three lines, not 150, then one that
    the database is back, and a later outage is said again from its start."""
    from typogate.store.engine import Outage

    now = [0.0]
    outage = Outage("store", "event", clock=lambda: now[0])
    down = OSError("connection refused")
    with caplog.at_level(logging.WARNING, logger="typogate.store.engine"):
        for second in range(151):
            now[0] = float(second)
            outage.failed(second + 1, down)
        outage.ended()
        outage.ended()  # nothing to say: it was not down
        now[0] = 500.0
        outage.failed(3, down, "correspondent count")
    said = [record.getMessage() for record in caplog.records]
    assert said == [
        "store: cannot write 1 events (will retry, and say so again each minute it lasts): "
        "connection refused",
        "store: the database has been down for 60 s; 61 events wait: connection refused",
        "store: the database has been down for 120 s; 121 events wait: connection refused",
        "store: the database is back after 150 s; what waited is written",
        "store: cannot write 3 correspondent counts (will retry, and say so again each "
        "minute it lasts): connection refused",
    ]


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_incident_counts_feed_the_dashboard(backend, request, sqlite_url):
    """The writer keeps daily counts; the dashboard's lists come from them."""
    from typogate.store.history import History

    url = sqlite_url if backend == "sqlite" else request.getfixturevalue("postgres").url
    store = Store(url)
    for event in [
        *events(5, "ann@army.ml", "boss@example.org"),
        *events(2, "ann@army.ml", "sue@example.org"),
        *events(3, "bob@gmial.com", "boss@example.org"),
        *events(7, "jane@army.mil", "boss@example.org"),
    ]:
        store.record(event)
    store.flush()
    history = History(store.engine)
    today = history.by_day(3)[-1]
    assert (today.allow, today.reject) == (7, 10)
    assert [(d.domain, d.suggestion, d.count, d.senders) for d in history.top_domains()] == [
        ("army.ml", "army.mil", 7, 2),
        ("gmial.com", "gmail.com", 3, 1),
    ]
    assert [(s.sender, s.count, s.domains) for s in history.top_senders()] == [
        ("boss@example.org", 8, 2),
        ("sue@example.org", 2, 1),
    ]
    # Each pair with the sender's own word: sue released mail to army.ml once (others'
    # releases, and the organisation's count, are not hers).
    history.learn(
        {("sue@example.org", "army.ml"): 1, ("*", "army.ml"): 1, ("ann@example.org", "army.ml"): 4},
        evidence=Evidence.RELEASED,
    )
    assert [(p.sender, p.domain, p.count, p.released) for p in history.top_pairs()] == [
        ("boss@example.org", "army.ml", 5, 0),
        ("boss@example.org", "gmial.com", 3, 0),
        ("sue@example.org", "army.ml", 2, 1),
    ]
    newest = history.events(limit=3)  # alerts are kept as rows, allowed mail only counted
    assert [e.recipient for e in newest] == ["bob@gmial.com"] * 3
    older = history.events(before=newest[-1].id, limit=100, action=Action.REJECT)
    assert [e.recipient for e in older] == ["ann@army.ml"] * 7
    store.close()


def test_upgrading_an_old_store_counts_its_events_once(sqlite_url):
    """Revision 0003 counts the events stored before it existed."""
    from typogate.store.history import History

    store = Store(sqlite_url, keep_allowed=True)
    for event in events(4, "ann@army.ml") + events(6):
        store.record(event)
    store.flush()
    take_back(store, "0002")
    store.migrate()
    today = History(store.engine).by_day(1)[0]
    assert (today.allow, today.reject) == (6, 4)
    store.close()


def test_event_times_are_kept_and_an_event_without_one_is_stamped_when_recorded(sqlite_url):
    from datetime import UTC, datetime

    from typogate.store.history import History

    store = Store(sqlite_url)
    rejected = events(1, "john@army.ml")[0]
    then = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    store.record(rejected._replace(time=then.timestamp()))
    before = time.time()
    store.record(rejected._replace(time=None))
    store.flush()
    newest, oldest = History(store.engine).events()
    assert oldest.time == then
    stamped = newest.time.timestamp()
    assert before <= stamped <= time.time()
    store.close()


def test_a_store_url_typogate_cannot_use_is_a_clear_error_without_its_password(tmp_path):
    from mta import run_typogate
    from ports import free_port

    status, unsupported = run_typogate(
        "holds", "--db", "mysql://bob:hunter2@127.0.0.1/mail", cwd=tmp_path
    )
    assert status == 2  # bad usage
    assert "the store is sqlite:///PATH or postgresql://" in unsupported
    nobody_there = f"postgresql://bob:hunter2@127.0.0.1:{free_port()}/mail"
    status, refused = run_typogate("holds", "--db", nobody_there, cwd=tmp_path)
    assert status == 1
    assert "cannot open the store postgresql://bob:***@127.0.0.1" in refused
    assert "hunter2" not in unsupported + refused


def test_typogate_holds_shows_each_address_as_its_sender_writes_it(sqlite_url, tmp_path):
    """Before: the milter records a sender as her mail names her, ``"Sue Doe"@example.org``,
    and ``typogate holds`` quoted it again: ``"\\"Sue Doe\\""@example.org``, an address
    that is no one's. The policy service's unquoted ``bob<carol@example.org``, and every
    recipient (a verdict names it unquoted), were quoted right. Now each reads as its
    sender writes it, whichever adapter held the mail."""
    from mta import typogate_output

    store = Store(sqlite_url)
    for sender, recipient, source in [
        ('"Sue Doe"@example.org', "john doe@army.ml", HoldSource.MILTER_QUARANTINE),
        ("bob<carol@example.org", "jane doe@army.ml", HoldSource.POSTFIX_HOLD),
    ]:
        store.hold(
            HeldMessage("h" + source.value, source, sender, (recipient,), ("typo",), ("army.mil",))
        )
    store.close()
    shown = typogate_output(
        tmp_path, "holds", "--db", sqlite_url, env={**os.environ, "COLUMNS": "200"}
    )
    for address in ('"Sue Doe"@example.org', '"bob<carol"@example.org', '"john doe"@army.ml'):
        assert address in shown, shown
    assert '"jane doe"@army.ml' in shown and "\\" not in shown, shown


def test_a_senders_correspondents_are_found_however_she_is_spelled(sqlite_url):
    # Relationships are kept under the sender as a policy service hears her; an admin who
    # asks the dashboard or the API for "Sue Doe"@example.org, as her mail shows her,
    # found nothing.
    store = Store(sqlite_url)
    store.history.learn({("sue doe@example.org", "partner.example"): 3})
    for spelling in ('"Sue Doe"@example.org', "sue doe@example.org", "SUE DOE@example.org"):
        found = store.history.correspondents(spelling)
        assert [c.recipient_domain for c in found] == ["partner.example"], spelling
        assert store.history.correspondent_counts(spelling) == {"partner.example": 3}
    store.close()


def test_the_dashboard_counts_a_sender_once_however_her_mail_spelled_her(sqlite_url):
    # The milter hears "Sue Doe"@example.org, a policy service sue doe@example.org: the
    # dashboard listed her twice among the senders caught most, each with part of it.
    from typogate.store.history import History

    store = Store(sqlite_url)
    for event in [
        *events(2, "ann@army.ml", '"Sue Doe"@example.org'),
        *events(1, "ann@army.ml", "sue doe@example.org"),
    ]:
        store.record(event)
    store.flush()
    history = History(store.engine)
    assert [(s.sender, s.count, s.domains) for s in history.top_senders()] == [
        ("sue doe@example.org", 3, 1)
    ]
    assert [(d.domain, d.count, d.senders) for d in history.top_domains()] == [("army.ml", 3, 1)]
    store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_store_from_before_keeps_a_quoted_senders_relationships_under_one_name(
    backend, tmp_path, request
):
    from datetime import UTC, datetime

    from typogate.store.history import History

    # Before every path named a party alike, a log or the milter stored "sue doe"@... and a
    # policy service sue doe@...: two parties, each with half of her evidence.
    url = (
        request.getfixturevalue("postgres").url
        if backend == "postgres"
        else f"sqlite:///{tmp_path / 'typogate.db'}"
    )
    store = Store(url)
    take_back(store, "hardening_0001")  # the store as it was before
    rows = [
        ('"sue doe"@example.org', "partner.example", 3, 0, 0, "2026-01-05", "2026-02-01"),
        ("sue doe@example.org", "partner.example", 2, 1, 0, "2026-01-20", "2026-03-01"),
        ('"bob"@example.org', "other.example", 4, 0, 1, "2026-01-07", "2026-01-09"),
        ("*", "partner.example", 5, 1, 0, "2026-01-05", "2026-03-01"),
    ]
    with store.engine.begin() as connection:
        for row in rows:
            connection.exec_driver_sql(
                "INSERT INTO correspondents (sender, recipient_domain, count, received, "
                "released, first_seen, last_seen) VALUES "
                f"('{row[0]}', '{row[1]}', {row[2]}, {row[3]}, {row[4]}, "
                f"'{row[5]} 09:00:00+00:00', '{row[6]} 09:00:00+00:00')"
            )
        today = datetime.now(UTC).date().isoformat()
        for sender, count in (('"sue doe"@example.org', 2), ("sue doe@example.org", 1)):
            connection.exec_driver_sql(
                "INSERT INTO incidents (day, action, domain, suggestion, sender, count) "
                f"VALUES ('{today}', 'reject', 'army.ml', 'army.mil', '{sender}', {count})"
            )
    store.migrate()
    caught = [(s.sender, s.count) for s in History(store.engine).top_senders()]
    assert caught == [("sue doe@example.org", 3)]  # the dashboard's count: one sender
    kept = {(c.sender, c.recipient_domain): c for c in store.history.relationships()}
    assert set(kept) == {
        ("sue doe@example.org", "partner.example"),
        ("bob@example.org", "other.example"),
        ("*", "partner.example"),
    }
    sue = kept["sue doe@example.org", "partner.example"]
    assert (sue.count, sue.received, sue.released) == (5, 1, 0)
    assert (sue.first_seen.date().isoformat(), sue.last_seen.date().isoformat()) == (
        "2026-01-05",
        "2026-03-01",
    )
    bob = kept["bob@example.org", "other.example"]
    assert (bob.count, bob.received, bob.released) == (4, 0, 1)
    assert kept["*", "partner.example"].count == 5  # the organisation's own row: as it was
    store.close()


def test_a_locked_sqlite_file_delays_events_and_loses_none(sqlite_url, tmp_path, caplog):
    """Before: while another process held the SQLite file's write lock past the busy
    timeout, the driver's "database is locked" (its own error, which the bulk insert's raw
    cursor raises unwrapped) ended the writer process: it was replaced, and the batch it
    held was lost. Now the batch waits, as for a database that is down."""
    store = Store(sqlite_url)
    try:
        for event in rejected(3):
            store.record(event)
        store.flush()
        writer = _writer()
        locker = sqlite3.connect(tmp_path / "typogate.db", isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")  # another writer, for longer than busy_timeout
        for event in rejected(4):
            store.record(event)
        time.sleep(7)
        locker.execute("COMMIT")
        locker.close()
        store.flush()
        assert _writer().pid == writer.pid and "stopped (exit code" not in caplog.text
        assert store.history.event_count() == 7
    finally:
        store.close()


def test_a_sender_that_is_not_utf8_is_recorded_and_stops_nothing(sqlite_url, caplog):
    """Before: the milter hands on a sendmail -f sender with a byte that is not UTF-8 as a
    lone surrogate; its event made the bulk insert raise UnicodeEncodeError, which ended
    the writer process: replaced, with that batch lost. Now the event keeps the sender
    with U+FFFD for the byte, as the policy service reads such a byte."""
    store = Store(sqlite_url)
    try:
        store.record(rejected(1)[0])
        store.flush()
        writer = _writer()
        verdict = check("jane@army.ml")
        odd = VerdictEvent.of(verdict, Adapter.MILTER, Mode.ENFORCE, sender="al\udcffice@x.org")
        store.record(odd)
        for event in rejected(3):
            store.record(event)
        store.flush()
        assert _writer().pid == writer.pid and "stopped (exit code" not in caplog.text
        assert store.history.event_count() == 5
        senders = {e.sender for e in store.history.events(limit=10)}
        assert "al\ufffdice@x.org" in senders, senders
    finally:
        store.close()


@pytest.mark.postgres
def test_an_event_the_database_refuses_costs_only_itself(postgres):
    """Before: an event PostgreSQL refuses (a NUL, here built by hand: what an adapter
    records is cleaned, but an event that is not would do this) failed its whole batch,
    which was retried until it was dropped as "database unavailable", with every event
    beside it, up to 20,000. Now the batch is written event by event, and only the refused
    one is left out and counted as dropped."""
    store = Store(postgres.url)
    try:
        good = rejected(4)
        refused = good[0]._replace(sender="al\x00ice@x.org")
        for event in [good[0], refused, *good[1:]]:
            store.record(event)
        store.flush()
        assert store.history.event_count() == 4
        assert (store.written, store.dropped, store.queued) == (4, 1, 0)
        store.record(rejected(1)[0])  # and the writer goes on
        store.flush()
        assert store.history.event_count() == 5
    finally:
        store.close()
