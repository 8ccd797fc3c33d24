"""The monitor's snapshots in the store, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from typogate.store import Store
from typogate.store.lookalikes import LookAlikeSnapshots, SeenLookAlike


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
