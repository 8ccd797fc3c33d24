"""Events, learned correspondents and held messages; SQLite by default, PostgreSQL by URL.

``Store`` (and SQLAlchemy with it) is imported on first use: the adapters' hot path and
``typogate check`` only need the journal records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from typogate.store.journal import HeldMessage, Journal, VerdictEvent

if TYPE_CHECKING:
    from typogate.store.database import DEFAULT_URL, Store

__all__ = ["DEFAULT_URL", "HeldMessage", "Journal", "Store", "VerdictEvent"]


def __getattr__(name: str) -> Any:
    if name in ("Store", "DEFAULT_URL"):
        from typogate.store import database

        return getattr(database, name)
    raise AttributeError(name)
