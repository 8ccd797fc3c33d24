"""Events, learned correspondents, held messages, rules and accounts; SQLite by default,
PostgreSQL by URL.

``Store`` (and SQLAlchemy with it) is imported on first use: the adapters' hot path and
``typogate check`` only need the journal records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from typogate.store.journal import HeldMessage, Journal, VerdictEvent

if TYPE_CHECKING:
    from typogate.store.database import Store
    from typogate.store.engine import DEFAULT_URL

__all__ = ["DEFAULT_URL", "HeldMessage", "Journal", "Store", "VerdictEvent"]


def __getattr__(name: str) -> Any:
    if name == "Store":
        from typogate.store.database import Store

        return Store
    if name == "DEFAULT_URL":
        from typogate.store.engine import DEFAULT_URL

        return DEFAULT_URL
    raise AttributeError(name)
