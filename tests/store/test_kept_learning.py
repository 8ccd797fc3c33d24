"""A restart takes what the last start learned from the store, and weighs again only what
changed since; anything that could make the kept set wrong makes the start learn it all."""

from __future__ import annotations

import ctypes
import gc
import logging
import sqlite3
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from memory import memory_mib
from mta import Server, policy_answer, typogate_output
from ports import free_port
from postfix_lines import mail_log

from typogate import Config
from typogate.config import Rule
from typogate.policy.relationships import levels
from typogate.runtime import Runtime
from typogate.store import Store
from typogate.vocabulary import Action, Evidence

SETTINGS = {
    "domains": {"protected": ["army.mil", "example.org"]},
    # A slip of a partner that an admin allows: learned by the rule's leave.
    "rules": [{"domain": "acme-crop.com", "action": "allow"}],
}
# Every kind of standing a learning gives: learned from deliveries, proven by replies,
# learned by a rule, refused as a slip of a protected domain, and a sender's near-twins
# of which deliveries cannot tell the slip.
DOMAINS = [
    *(f"partner{n}.com" for n in range(20)),
    "army.ml",
    "acme-corp.com",
    "acme-crop.com",
    "sandre.ml",
    "sandre.mo",
    "newpartner.com",
]


def _tell(db: str, evidence: list[tuple[str, str, int, Evidence]]) -> None:
    """Store evidence at the three levels, as the writer and ``typogate learn`` do."""
    store = Store(db, create=True, writer=False)
    try:
        for party, domain, count, kind in evidence:
            store.history.learn({(level, domain): count for level in levels(party)}, evidence=kind)
    finally:
        store.close()


def _filled(tmp_path: Path) -> str:
    db = f"sqlite:///{tmp_path / 'typogate.db'}"
    sent, received = Evidence.SENT, Evidence.RECEIVED
    _tell(
        db,
        [
            *(("ops@example.org", f"partner{n}.com", 3, sent) for n in range(20)),
            ("ops@example.org", "army.ml", 40, sent),
            ("ops@example.org", "acme-corp.com", 30, sent),
            ("ops@example.org", "acme-corp.com", 3, received),
            ("bob@example.org", "acme-crop.com", 3, sent),
            ("ann@example.org", "sandre.ml", 3, sent),
            ("ann@example.org", "sandre.mo", 4, sent),
        ],
    )
    return db


def _start(db: str, caplog: pytest.LogCaptureFixture, *, kept: bool = True, **settings):
    """A start on ``db``: what it learned, its verdicts on DOMAINS, and how it learned."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="typogate.runtime"):
        runtime = Runtime.open(Config(**{**SETTINGS, **settings}), db)
        try:
            guard = runtime.guard if kept else runtime.relearn()
            verdicts = {}
            for domain in DOMAINS:
                judged = guard.judge_domain(domain)
                verdicts[domain] = (judged.action, judged.reason, judged.suggestion)
            learned = guard.learned_set().domains
        finally:
            runtime.close()
    line = next(r.getMessage() for r in caplog.records if "learned relationships" in r.getMessage())
    return learned, verdicts, line[line.rindex("(") :]


def test_a_restart_takes_what_the_last_start_learned(tmp_path: Path, caplog):
    """Before: every start weighed every correspondent again (21.6 s of a 25.6 s start on
    270,000 relationships, bench/ready.py). A restart now takes the set the last start
    learned, and its verdicts are those of a start that learns everything."""
    db = _filled(tmp_path)
    learned, verdicts, how = _start(db, caplog)
    assert how == "(from every relationship: none kept)"
    kept_learned, kept_verdicts, how = _start(db, caplog)
    assert how.startswith("(kept 0 min ago, 0 domains weighed again")
    assert kept_learned == learned and kept_verdicts == verdicts
    # What the set holds: each kind of standing.
    assert verdicts["partner3.com"][1] == "allowed.known"
    assert verdicts["acme-corp.com"][1] == "allowed.known"
    assert verdicts["acme-crop.com"][1] == "allowed.rule"
    assert verdicts["army.ml"][:1] == (Action.REJECT,)
    assert {verdicts[twin][1] for twin in ("sandre.ml", "sandre.mo")} == {"allowed.no_likely_typo"}
    assert [learned[twin][3] for twin in ("sandre.ml", "sandre.mo", "army.ml")] == [0, 0, 0]


def test_evidence_stored_since_is_weighed_at_the_restart(tmp_path: Path, caplog):
    """What other processes stored after the set was kept is weighed as a running process
    weighs it: a new partner is learned, a sender's twin proven by its replies is, and more
    mail to a slip teaches nothing; as a start that learns everything finds."""
    db = _filled(tmp_path)
    _start(db, caplog)
    sent, received = Evidence.SENT, Evidence.RECEIVED
    _tell(
        db,
        [
            ("ops@example.org", "newpartner.com", 3, sent),
            ("ann@example.org", "sandre.ml", 2, received),
            ("bob@example.org", "army.ml", 5, sent),
        ],
    )
    kept_learned, kept_verdicts, how = _start(db, caplog)
    assert how.startswith("(kept 0 min ago, 3 domains weighed again")
    learned, verdicts, how = _start(db, caplog, kept=False)
    assert how == "(from every relationship: a whole learning was asked for)"
    assert kept_learned == learned and kept_verdicts == verdicts
    assert verdicts["newpartner.com"][1] == verdicts["sandre.ml"][1] == "allowed.known"
    assert verdicts["army.ml"][:1] == (Action.REJECT,)


def test_other_code_configuration_lists_or_rules_learn_everything(tmp_path: Path, caplog):
    """A set learned under other lists or rules says nothing about these: army.ml, a slip
    under the lists it was kept with, is a partner's domain once army.mil is no longer
    protected (and the other way round)."""
    db = _filled(tmp_path)
    _start(db, caplog)
    changed = "(from every relationship: the code, configuration, lists or rules changed"
    learned, verdicts, how = _start(db, caplog, domains={"protected": ["example.org"]})
    assert how.startswith(changed)
    assert verdicts["army.ml"][1] == "allowed.known" and learned["army.ml"][3] != 0
    _, verdicts, how = _start(db, caplog)  # back: the set kept is the other one's
    assert how.startswith(changed) and verdicts["army.ml"][:1] == (Action.REJECT,)
    store = Store(db, writer=False)
    store.rules.save(Rule(domain="army.ml", action=Action.ALLOW), "admin")
    store.close()
    _, verdicts, how = _start(db, caplog)
    assert how.startswith(changed) and verdicts["army.ml"][1] == "allowed.rule"


def _set_kept(tmp_path: Path, column: str, value: object) -> None:
    with sqlite3.connect(tmp_path / "typogate.db") as connection:
        connection.execute(f"UPDATE learned_sets SET {column} = ?", (value,))


def test_a_set_older_than_a_day_is_not_taken(tmp_path: Path, caplog):
    """Evidence fades while nothing changes: a day on, a start weighs it all again."""
    db = _filled(tmp_path)
    _start(db, caplog)
    _set_kept(tmp_path, "as_of", (datetime.now(UTC) - timedelta(days=2)).isoformat(" "))
    _, _, how = _start(db, caplog)
    assert how == "(from every relationship: the set kept is 48 hours old)"
    _, _, how = _start(db, caplog)  # and keeps a new one
    assert how.startswith("(kept 0 min ago")


@pytest.mark.parametrize(
    "damaged",
    ['{"partner1.com": [3, 0, 0, "1"]', '{"army.ml": [40, 0, 0, "learned"]}', "[]", ""],
)
def test_a_damaged_set_is_not_trusted(tmp_path: Path, caplog, damaged: str):
    """A set that cannot be read whole teaches nothing: the start learns everything, says
    why, and keeps a sound set for the next."""
    db = _filled(tmp_path)
    learned, verdicts, _ = _start(db, caplog)
    _set_kept(tmp_path, "learned", damaged)
    relearned, reverdicts, how = _start(db, caplog)
    assert how == "(from every relationship: the set kept cannot be read)"
    assert "the learned set kept cannot be read: not a learned set" in caplog.text
    assert (relearned, reverdicts) == (learned, verdicts)
    assert _start(db, caplog)[2].startswith("(kept 0 min ago")


def test_a_restarted_policy_service_answers_from_the_kept_set(tmp_path: Path):
    """The whole path: a second ``typogate policy`` on the store takes the set the first
    one kept, says so in its start's line, and judges as the first did."""
    db = _filled(tmp_path)
    config = tmp_path / "typogate.toml"
    config.write_text(
        "[domains]\nprotected = ['army.mil', 'example.org']\n"
        "[[rules]]\ndomain = 'acme-crop.com'\naction = 'allow'\n"
    )
    answers, lines = [], []
    for start in range(2):
        port = free_port()
        server = Server(
            ["policy", "--listen", f"127.0.0.1:{port}", "--db", db, "--config", str(config)],
            port,
            tmp_path / f"policy-{start}.log",
        ).start()
        try:
            answers.append(
                [
                    policy_answer(port, f"x@{domain}", "ops@example.org")
                    for domain in ("army.ml", "partner3.com", "acme-crop.com", "partner3.co")
                ]
            )
        finally:
            server.stop()
        lines.append(next(line for line in server.log.splitlines() if "ready in" in line))
    assert "(from every relationship: none kept)" in lines[0]
    assert "(kept 0 min ago, 0 domains weighed again)" in lines[1]
    assert answers[0] == answers[1]
    assert [answer.split()[0] for answer in answers[1]] == [
        "action=550",
        "action=DUNNO",
        "action=DUNNO",
        "action=550",
    ], answers[1]


def test_two_starts_at_once_on_postgresql_keep_one_set(postgres):
    """Gateways restarted together on one PostgreSQL each learn everything and keep it:
    the second to commit finds the first's set under the same key, keeps that one, and
    says so without an error; the next start takes it."""
    db = postgres.url
    _tell(db, [("ops@example.org", f"partner{n}.com", 3, Evidence.SENT) for n in range(5)])
    store = Store(db, writer=False)
    first = Store(db, writer=False)
    try:
        with first.engine.connect() as connection:  # the first start, not yet committed
            transaction = connection.begin()
            connection.exec_driver_sql("DELETE FROM learned_sets")
            connection.exec_driver_sql(
                "INSERT INTO learned_sets (key, as_of, learned) VALUES ('k', now(), '{}')"
            )
            with ThreadPoolExecutor(1) as pool:
                second = pool.submit(store.history.keep_learned, "k", datetime.now(UTC), "{}")
                time.sleep(0.5)  # the second waits on the first's row
                assert not second.done()
                transaction.commit()
                assert second.result(timeout=10) is False
        assert store.history.kept_learned("k") is not None
    finally:
        first.close()
        store.close()


def test_learn_keeps_what_it_learned_with_the_replies(tmp_path: Path, caplog):
    """Before: ``typogate learn`` kept the set it learned from the deliveries alone, and
    the gateways' next start weighed the replies on top of it, in the mail's order. Ann's
    five deliveries to her saved slip acme-crop.com had made it a correspondent, and it
    stayed one when bob's partner acme-corp.com answered him twice: a slip to it went
    through as mail to a known correspondent. Learned at once, the answered domain weighs
    more, and the slip is the other one. learn now keeps that."""
    log = mail_log(
        [
            ("ann@example.org", "sales@acme-crop.com", 5),
            ("bob@example.org", "sales@acme-corp.com", 3),
        ],
        [("sales@acme-corp.com", "bob@example.org", 2)],
    )
    (tmp_path / "mail.log").write_text(log)
    db = f"sqlite:///{tmp_path / 'typogate.db'}"
    typogate_output(tmp_path, "learn", "mail.log", "--db", db, "--json")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="typogate.runtime"):
        runtime = Runtime.open(Config(), db)
        try:
            partner, slip = (
                runtime.guard.evaluate(f"sales@{domain}", "bob@example.org")
                for domain in ("acme-corp.com", "acme-crop.com")
            )
        finally:
            runtime.close()
    assert "(kept 0 min ago, 0 domains weighed again)" in caplog.text
    assert partner.action is Action.ALLOW, partner
    assert (slip.action, slip.suggestion) != (Action.ALLOW, None), slip


def test_a_running_gateway_learns_again_twice_a_day(tmp_path: Path):
    """Before: only a start learned from every relationship, and a gateway kept what it
    learned for as long as it ran. Evidence fades meanwhile: oldpartner.com, three
    deliveries 30 hours ago at a half-life of 2.4 hours, is no correspondent any more, and
    a start 13 hours after the set was kept took the set and went on flagging mail to
    oldpartnr.com as a slip of it, for good. The gateway now answers from that set at
    once, learns everything again beside it, judges with what it learned, and keeps it."""
    db = f"sqlite:///{tmp_path / 'typogate.db'}"
    _tell(db, [("ops@example.org", "oldpartner.com", 3, Evidence.SENT)])
    config = tmp_path / "typogate.toml"
    config.write_text(
        "[domains]\nprotected = ['army.mil', 'example.org']\n[learning]\nhalf_life_days = 0.1\n"
    )
    servers = []

    def start() -> tuple[int, Server]:
        port = free_port()
        command = ["policy", "--listen", f"127.0.0.1:{port}", "--db", db, "--config", str(config)]
        servers.append(Server(command, port, tmp_path / f"policy-{len(servers)}.log"))
        return port, servers[-1].start()

    try:
        port, first = start()
        slip = policy_answer(port, "x@oldpartnr.com", sender="")
        first.stop()
        assert not slip.startswith("action=DUNNO"), slip  # learned when it was fresh
        now = datetime.now(UTC)
        with sqlite3.connect(tmp_path / "typogate.db") as connection:
            connection.execute(
                "UPDATE correspondents SET first_seen = ?, last_seen = ?",
                ((now - timedelta(hours=30)).isoformat(" "),) * 2,
            )
        _set_kept(tmp_path, "as_of", (now - timedelta(hours=13)).isoformat(" "))
        port, second = start()
        deadline = time.monotonic() + 30
        while policy_answer(port, "x@oldpartnr.com", sender="") != "action=DUNNO\n\n":
            assert time.monotonic() < deadline, second.log
            time.sleep(0.2)
        assert policy_answer(port, "x@army.ml", "ops@example.org").startswith("action=550 ")
    finally:
        for server in servers:
            server.stop()
    lines = [line for line in second.log.splitlines() if "ready in" in line]
    assert "(kept 780 min ago, 0 domains weighed again)" in lines[0], second.log
    assert "(from every relationship: what the Guard in use weighed is 13 hours old)" in lines[1]
    with sqlite3.connect(tmp_path / "typogate.db") as connection:
        (as_of,) = connection.execute("SELECT as_of FROM learned_sets").fetchone()
    assert datetime.fromisoformat(as_of).replace(tzinfo=UTC) > now - timedelta(minutes=1)


def test_a_whole_learning_that_fails_keeps_the_guard_in_use(tmp_path: Path, caplog):
    """A store that cannot be read when the gateway learns again costs nothing but a
    logged error: the Guard in use goes on judging, and the learning is tried again later
    (not at every look at the store)."""
    db = _filled(tmp_path)
    _start(db, caplog)
    _set_kept(tmp_path, "as_of", (datetime.now(UTC) - timedelta(hours=13)).isoformat(" "))
    runtime = Runtime.open(Config(**SETTINGS), db)
    try:
        guard = runtime.guard
        with sqlite3.connect(tmp_path / "typogate.db") as connection:
            connection.execute("ALTER TABLE correspondents RENAME TO elsewhere")
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="typogate.runtime"):
            watcher = runtime.watch(every=0.05)
            watcher.start()
            time.sleep(1.0)
            watcher.stop()
        failures = [r for r in caplog.records if "learning again failed" in r.getMessage()]
        assert len(failures) == 1, caplog.text
        assert "no such table: correspondents" in caplog.text
        assert runtime.guard is guard
        assert guard.judge_domain("partner3.com").reason == "allowed.known"
    finally:
        runtime.close()


def test_the_guard_learned_again_takes_the_old_ones_place_in_memory(tmp_path: Path, caplog):
    """A serving process freezes what it built at start out of the cycle collector's sight
    (Runtime.settle). Before, only a reload froze its new Guard: after a learning
    twice a day the new Guard was walked by every full collection while mail waited. The
    old one is gone, freed by reference counting alone: before, its judge held its own
    cache, which held the judge, so only a full collection could free it: the swap
    unfroze every object of the process and walked them all, holding the GIL while mail
    waited."""
    db = _filled(tmp_path)
    _start(db, caplog)
    runtime = Runtime.open(Config(**SETTINGS), db)
    try:
        old = runtime.guard
        old.judge_domain("army.ml")  # a verdict in its cache
        parts = [weakref.ref(p) for p in (old, old._judge, old._judge.index, old.relationships)]
        del old
        runtime.settle()
        gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector finds stays in gc.garbage
        try:
            new = runtime.relearn("asked for by the test")
            assert all(part() is None for part in parts)
            found = {type(garbage).__module__ for garbage in gc.garbage}
            assert not {module for module in found if module.startswith("typogate")}, found
            assert not any(tracked is new for tracked in gc.get_objects())
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.unfreeze()
    finally:
        runtime.close()


@pytest.mark.skipif(not hasattr(ctypes.CDLL(None), "malloc_trim"), reason="glibc's call")
def test_what_the_old_guard_freed_goes_back_to_the_system(tmp_path: Path):
    """Before, what the Guard swapped out freed stayed with the allocator: a later
    ``malloc_trim`` gave back 5 to 11 MiB after each learning on the built-in profile, and
    a gateway's memory after 20 reloads on 270,000 relationships was 627 MiB instead of
    512 (bench/ready.py). Now the swap gives it back."""
    runtime = Runtime.open(Config(), _filled(tmp_path))  # the built-in profile's index
    try:
        runtime.guard.judge_domain("army.ml")  # built, with a verdict in its cache
        runtime.settle()  # as a serving process does before serving
        try:
            for _ in range(3):
                runtime.relearn("asked for by the test")
                held = memory_mib()
                ctypes.CDLL(None).malloc_trim(0)
                assert held - memory_mib() < 1.0
        finally:
            gc.unfreeze()
    finally:
        runtime.close()
