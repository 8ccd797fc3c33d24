"""The monitor's snapshots in the store, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from typogate.store import Store
from typogate.store.lookalikes import LookAlikeSnapshots
from typogate.store.records import SeenLookAlike, WatchedDomain


def seen(domain: str, state: str, change: str, mx: tuple[str, ...] = ()) -> SeenLookAlike:
    return SeenLookAlike(domain, domain, "army.mil", 0.2, 7, state, mx, True, False, None, change)


def check_snapshots(url: str) -> None:
    store = Store(url, writer=False)
    try:
        snapshots = LookAlikeSnapshots(store.engine)
        assert snapshots.latest_states() == {}
        start = datetime(2026, 1, 1, tzinfo=UTC)
        first = snapshots.record(
            start,
            start + timedelta(seconds=3),
            1,
            250,
            [
                seen("army.ml", "mx", "new", ("mx1.army.ml", "mx2.army.ml")),
                seen("arny.mil", "null_mx", "new"),
            ],
        )
        second = snapshots.record(
            start + timedelta(days=1),
            start + timedelta(days=1, seconds=3),
            1,
            250,
            [seen("army.ml", "nxdomain", "gone"), seen("amry.mil", "a_only", "new")],
        )
        # arny.mil was not seen by the second run: its latest state is the first run's.
        assert snapshots.latest_states() == {
            "army.ml": "nxdomain",
            "arny.mil": "null_mx",
            "amry.mil": "a_only",
        }
        latest = snapshots.latest()
        assert latest["arny.mil"].run == first and latest["army.ml"].run == second
        assert [r.id for r in snapshots.runs()] == [second, first]
        assert [r.changes for r in snapshots.runs()] == [2, 2]
        old = {row.domain: row for row in snapshots.snapshot(first)}
        assert old["army.ml"].mx == ("mx1.army.ml", "mx2.army.ml") and old["army.ml"].spf
    finally:
        store.close()


def test_snapshots_on_sqlite(tmp_path):
    check_snapshots(f"sqlite:///{tmp_path / 'store.db'}")


@pytest.mark.postgres
def test_snapshots_on_postgresql(postgres):
    check_snapshots(postgres.url)


def look_alike(
    domain: str, intended: str, rank: int, state: str, change: str, mx: tuple[str, ...] = ()
) -> SeenLookAlike:
    return SeenLookAlike(
        domain, domain, intended, 1 / rank, rank, state, mx, False, False, None, change
    )


def check_what_the_dashboard_reads(url: str) -> None:
    store = Store(url, writer=False)
    try:
        snapshots = store.look_alikes
        assert snapshots.watched() == [] and snapshots.earlier(["army.ml"], 1) == {}
        assert snapshots.version() == (0, 0)
        start = datetime(2026, 1, 1, tzinfo=UTC)

        def run(day: int, *seen: SeenLookAlike) -> int:
            moment = start + timedelta(days=day)
            return snapshots.record(moment, moment + timedelta(seconds=5), 2, 400, seen)

        first = run(
            0,
            look_alike("army.ml", "army.mil", 7, "mx", "new", ("mx1.army.ml",)),
            look_alike("arny.mil", "army.mil", 3, "null_mx", "new"),
            look_alike("navy.ml", "navy.mil", 4, "a_only", "new"),
        )
        second = run(  # navy.mil was not in this run's list
            1,
            look_alike("army.ml", "army.mil", 7, "mx", "changed", ("mx2.army.ml",)),
            look_alike("arny.mil", "army.mil", 3, "nxdomain", "gone"),
            look_alike("amry.mil", "army.mil", 28, "no_mail", "new"),
        )
        third = run(2, look_alike("navy.ml", "navy.mil", 4, "a_only", "same"))

        latest = snapshots.latest()  # by intended domain and rank
        assert list(latest) == ["arny.mil", "army.ml", "amry.mil", "navy.ml"]
        assert latest["army.ml"].mx == ("mx2.army.ml",) and latest["army.ml"].run == second
        assert latest["navy.ml"].run == third

        # What each changed from: its observation before that run, whichever run it was.
        domains = ["army.ml", "amry.mil", "navy.ml", "arny.mil", "nowhere.ml"]
        before = snapshots.earlier(domains, second)
        assert {domain: seen.run for domain, seen in before.items()} == {
            "army.ml": first,
            "navy.ml": first,
            "arny.mil": first,
        }
        assert before["army.ml"].mx == ("mx1.army.ml",) and before["arny.mil"].state == "null_mx"
        later = snapshots.earlier(domains, third)
        assert {domain: seen.run for domain, seen in later.items()} == {
            "army.ml": second,
            "navy.ml": first,
            "arny.mil": second,
            "amry.mil": second,
        }
        assert snapshots.earlier(domains, first) == {}
        many = [f"nowhere{n}.ml" for n in range(450)] + domains  # asked in batches
        assert snapshots.earlier(many, third) == later

        assert snapshots.watched() == [
            WatchedDomain("army.mil", second, start + timedelta(days=1, seconds=5), 2, 1),
            WatchedDomain("navy.mil", third, start + timedelta(days=2, seconds=5), 1, 1),
        ]
        assert [(s.domain, s.change) for s in snapshots.changes(second)] == [
            ("arny.mil", "gone"),
            ("army.ml", "changed"),
            ("amry.mil", "new"),
        ]
        assert snapshots.changes(third) == []
        assert [s.domain for s in snapshots.changes(second, limit=2)] == ["arny.mil", "army.ml"]
        assert snapshots.version() == (3, third)
        assert snapshots.runs(limit=1)[0].finished == start + timedelta(days=2, seconds=5)
    finally:
        store.close()


def test_what_the_dashboard_reads_on_sqlite(tmp_path):
    check_what_the_dashboard_reads(f"sqlite:///{tmp_path / 'store.db'}")


@pytest.mark.postgres
def test_what_the_dashboard_reads_on_postgresql(postgres):
    check_what_the_dashboard_reads(postgres.url)
