"""Events, learned correspondents and held messages; SQLite by default, PostgreSQL by URL."""

from typogate.store.database import DEFAULT_URL, Store
from typogate.store.journal import HeldMessage, Journal, VerdictEvent

__all__ = ["DEFAULT_URL", "HeldMessage", "Journal", "Store", "VerdictEvent"]
