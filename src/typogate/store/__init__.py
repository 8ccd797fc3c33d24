"""Events, learned correspondents and held messages; SQLite by default, PostgreSQL by URL."""

from typogate.store.journal import HeldMessage, Journal, VerdictEvent

__all__ = ["HeldMessage", "Journal", "VerdictEvent"]
