"""typogate monitor against a real DNS server: each planted look-alike with its state, and
a second run after the zone changed reports exactly the change."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dns_server import DnsServer
from lookalike_zone import PLANTED, ZONES
from mta import TYPOGATE, run_typogate
from ports import free_port
from sqlalchemy import select, update

from typogate.domains import ascii_form
from typogate.store import Store
from typogate.store.lookalikes import LookAlikeSnapshots
from typogate.store.models import LookAlikeRow, MonitorRunRow

KEYS = ["domain", "intended", "probability", "rank", "state", "mx", "spf", "dmarc", "change"]


def monitor(tmp_path: Path, nameserver: str, *args: str, db: str | None = None) -> list[dict]:
    protected = tmp_path / "protected.txt"
    protected.write_text("army.mil  # the one we watch\n")
    done = subprocess.run(
        [TYPOGATE, "monitor", "--protect", str(protected), "--nameserver", nameserver,
         "--db", db or f"sqlite:///{tmp_path / 'store.db'}", "--json", *args],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def by_domain(lines: list[dict]) -> dict[str, dict]:
    return {line["domain"]: line for line in lines}


def test_finds_each_planted_look_alike_with_its_state(tmp_path, planted):
    lines = monitor(tmp_path, planted.nameserver)
    assert all(list(line) == KEYS for line in lines)
    found = by_domain(lines)
    assert set(found) == set(PLANTED)  # example.ml exists but is no look-alike of army.mil
    for domain, (state, mx, spf, dmarc) in PLANTED.items():
        line = found[domain]
        assert (line["state"], line["mx"], line["spf"], line["dmarc"]) == (state, mx, spf, dmarc)
        assert line["intended"] == "army.mil" and line["change"] == "new"
        assert 0 < line["probability"] < 1
    ranks = [line["rank"] for line in lines]
    assert ranks == sorted(ranks)
    assert found["army.ml"]["rank"] < found["armymil.com"]["rank"]


def test_all_shows_the_ones_that_do_not_exist_too(tmp_path, planted):
    lines = monitor(tmp_path, planted.nameserver, "--all")
    states = {line["state"] for line in lines}
    assert len(lines) > 100 and "nxdomain" in states
    assert by_domain(lines)["army.mil.com"]["state"] == "nxdomain"


def test_a_second_run_reports_exactly_the_change(tmp_path):
    with DnsServer(ZONES) as server:
        first = by_domain(monitor(tmp_path, server.nameserver))
        assert {line["change"] for line in first.values()} == {"new"}
        assert by_domain(monitor(tmp_path, server.nameserver)).keys() == first.keys()
        assert {line["change"] for line in monitor(tmp_path, server.nameserver)} == {"same"}

        # Records change inside the zones (the server reloads them on SIGHUP).
        changed = dict(ZONES)
        changed["amry.mil"] = "@ MX 10 mx.amry.mil.\n"  # no_mail -> mx
        changed["arrny.mil"] = '@ MX 0 .\n@ TXT "v=spf1 -all"\n'  # SPF appears
        server.load(changed)
        second = by_domain(monitor(tmp_path, server.nameserver))
        assert {d: line["change"] for d, line in second.items() if line["change"] != "same"} == {
            "amry.mil": "changed",
            "arrny.mil": "changed",
        }
        assert second["amry.mil"]["state"] == "mx" and second["amry.mil"]["mx"] == ["mx.amry.mil"]
        assert second["arrny.mil"]["spf"] is True

        # A look-alike is registered, another lapses.
        changed["amry.ml"] = "@ MX 5 catchall.amry.ml.\n"
        del changed["armymil.com"]
        server.load(changed)
        third = monitor(tmp_path, server.nameserver)
    assert {line["domain"]: line["change"] for line in third if line["change"] != "same"} == {
        "amry.ml": "new",
        "armymil.com": "gone",
    }
    assert by_domain(third)["armymil.com"]["state"] == "nxdomain"
    # The store keeps every run; the latest state of each look-alike is what the gateway loads.
    store = Store(f"sqlite:///{tmp_path / 'store.db'}", writer=False)
    try:
        snapshots = LookAlikeSnapshots(store.engine)
        latest = snapshots.latest_states()
        assert [run.changes for run in snapshots.runs()] == [2, 2, 0, 0, 6]
    finally:
        store.close()
    assert latest["amry.ml"] == "mx" and latest["armymil.com"] == "nxdomain"
    assert latest["amry.mil"] == "mx" and latest["xn--rmy-5cd.mil"] == "a_only"


def test_table_and_bad_usage(tmp_path, planted):
    protected = tmp_path / "protected.txt"
    protected.write_text("army.mil\n")
    db = f"sqlite:///{tmp_path / 'store.db'}"
    done = subprocess.run(
        [TYPOGATE, "monitor", "--protect", str(protected), "--nameserver", planted.nameserver,
         "--db", db],
        capture_output=True, text=True, timeout=120, env={"COLUMNS": "80", "PATH": "/usr/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "army.ml" in done.stdout and "mail.army.ml" in done.stdout
    # A look-alike in another script shows for what it is: its A-label form beneath (it
    # read "аrmy.mil  for army.mil", the same letters twice).
    assert "\u0430rmy.mil" in done.stdout and "xn--rmy-5cd.mil" in done.stdout, done.stdout
    assert max(len(line) for line in done.stdout.splitlines()) <= 80
    for args, said in (
        (["--nameserver", "dns.example"], "bad --nameserver"),
        (["--nameserver", planted.nameserver, "--out", "x.map"], "--out needs --export"),
        (["--nameserver", planted.nameserver, "--webhook", "ftp://x"], "bad --webhook"),
    ):
        status, stderr = run_typogate(
            "monitor", "--protect", str(protected), "--db", db, *args, cwd=tmp_path
        )
        assert status == 2 and said in stderr
    bad = tmp_path / "bad.txt"
    bad.write_text("army.mil\nnot a domain\n")
    status, stderr = run_typogate(
        "monitor", "--protect", str(bad), "--nameserver", f"127.0.0.1:{free_port()}",
        "--db", db, cwd=tmp_path,
    )  # fmt: skip
    assert status == 2 and "bad.txt:2" in stderr


def test_json_is_utf8_whatever_the_locale(tmp_path, planted):
    protected = tmp_path / "protected.txt"
    protected.write_text("army.mil\n")
    done = subprocess.run(
        [TYPOGATE, "monitor", "--protect", str(protected), "--nameserver", planted.nameserver,
         "--db", f"sqlite:///{tmp_path / 'store.db'}", "--json"],
        capture_output=True, timeout=120,
        env={"PATH": "/usr/bin", "LANG": "en_US.ISO-8859-1", "PYTHONIOENCODING": "latin-1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.decode("utf-8").splitlines()]
    assert "аrmy.mil" in {line["domain"] for line in lines}


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_runs_older_than_the_days_kept_are_forgotten_but_not_what_each_look_alike_became(
    tmp_path, request, backend
):
    """Before: every run kept a row for every look-alike that exists, for good. An hourly
    watch over 1,500 protected domains (15,000 such rows a run, bench/monitor_page.py) adds
    360,000 rows a day, and the gateway's start and the dashboard read them all. Now a run
    older than --keep-days (90 by default) is forgotten, except each look-alike's last
    observation among them: one that went stays known as gone, which the gateway reads as
    a slip that can only bounce."""
    url = request.getfixturevalue("postgres").url if backend == "postgres" else None
    url = url or f"sqlite:///{tmp_path / 'store.db'}"
    with DnsServer(ZONES) as server:
        monitor(tmp_path, server.nameserver, db=url)  # run 1: every one is new
        lapsed = dict(ZONES)
        del lapsed["armymil.com"]
        server.load(lapsed)
        monitor(tmp_path, server.nameserver, db=url)  # run 2: armymil.com is gone
        store = Store(url, writer=False)
        try:
            with store.engine.begin() as connection:  # both runs are now 100 days old
                long_ago = datetime.now(UTC) - timedelta(days=100)
                connection.execute(update(MonitorRunRow).values(started=long_ago))
        finally:
            store.close()
        assert len(monitor(tmp_path, server.nameserver, db=url)) == len(PLANTED) - 1
    store = Store(url, writer=False)
    try:
        with store.engine.connect() as connection:
            runs = connection.scalars(select(MonitorRunRow.id).order_by(MonitorRunRow.id)).all()
            rows = connection.execute(select(LookAlikeRow.domain, LookAlikeRow.run_id)).all()
        latest = LookAlikeSnapshots(store.engine).latest_states()
    finally:
        store.close()
    assert runs == [2, 3], runs  # run 2 holds what armymil.com became, and the "from"s
    last_old = {(ascii_form(domain), 2) for domain in PLANTED}
    newest = {(ascii_form(domain), 3) for domain in PLANTED} - {("armymil.com", 3)}
    assert len(rows) == len(last_old | newest) and set(rows) == last_old | newest, rows
    assert latest["armymil.com"] == "nxdomain" and latest["army.ml"] == "mx"


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_kept_change_keeps_what_it_changed_from(tmp_path, request, backend):
    """Before: forgetting the runs older than --keep-days also forgot the observation that
    the oldest kept run's changes came from. armymil.com, taking mail 100 days ago and
    gone now, then had nothing before it, and the dashboard called it "first seen". Now
    the last observation of each look-alike before the days kept stays."""
    url = request.getfixturevalue("postgres").url if backend == "postgres" else None
    url = url or f"sqlite:///{tmp_path / 'store.db'}"
    with DnsServer(ZONES) as server:
        monitor(tmp_path, server.nameserver, db=url)  # run 1: armymil.com takes mail
        store = Store(url, writer=False)
        try:
            with store.engine.begin() as connection:
                long_ago = datetime.now(UTC) - timedelta(days=100)
                connection.execute(update(MonitorRunRow).values(started=long_ago))
        finally:
            store.close()
        lapsed = dict(ZONES)
        del lapsed["armymil.com"]
        server.load(lapsed)
        gone = monitor(tmp_path, server.nameserver, db=url)  # run 2 forgets run 1
    assert {line["domain"]: line["change"] for line in gone}["armymil.com"] == "gone"
    store = Store(url, writer=False)
    try:
        before = LookAlikeSnapshots(store.engine).earlier(["armymil.com", "army.ml"], 2)
    finally:
        store.close()
    assert before["armymil.com"].state == "a_only" and before["armymil.com"].run == 1
    assert before["army.ml"].state == "mx"


def test_own_networks_are_named_on_the_command_line(tmp_path):
    """--own-network names the organisation's own ranges, which the probe never connects
    to, also with --probe-private (the planted look-alikes point at documentation
    addresses, a lab's); a range that is no network is bad usage."""
    with DnsServer(ZONES) as server:
        lines = monitor(
            tmp_path, server.nameserver, "--probe-smtp", "--probe-private", "--probe-port",
            str(free_port()), "--own-network", "192.0.2.0/24", "--own-network", "2001:db8::/32",
        )  # fmt: skip
        bad = subprocess.run(
            [TYPOGATE, "monitor", "--own-network", "192.0.2.0/33", "--nameserver",
             server.nameserver],
            capture_output=True, text=True, timeout=60, cwd=tmp_path,
        )  # fmt: skip
    store = Store(f"sqlite:///{tmp_path / 'store.db'}", writer=False)
    try:
        seen = LookAlikeSnapshots(store.engine).latest()
    finally:
        store.close()
    probes = {domain: seen[ascii_form(domain)].probe for domain in PLANTED}
    taking = {"army.ml", "armymil.com", "аrmy.mil"}
    assert len(lines) == len(PLANTED)
    assert probes == {domain: "own_network" if domain in taking else None for domain in PLANTED}
    assert bad.returncode == 2 and "bad --own-network" in bad.stderr, bad.stderr
