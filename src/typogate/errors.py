"""The root of every error typogate raises on purpose.

Each part defines its own errors next to the code that raises them (``InvalidAddress`` in
``domains``, ``UnknownHold`` in the gateway, ...), all under :class:`TypogateError`, so a
caller can catch everything typogate means to say with one ``except``. Errors that are also
bad values subclass ``ValueError`` as well.
"""

from __future__ import annotations

import os


class TypogateError(Exception):
    """Something typogate could not do; the message says why in words a person reads."""


class ConfigError(TypogateError, ValueError):
    """A configuration that cannot be used; the message names the file and the key."""


class StoreURLError(TypogateError, ValueError):
    """A store URL for a database typogate does not support (only SQLite and PostgreSQL).

    Here rather than beside the store's engine so that a command can say it without
    importing the database libraries (a tenth of a second of ``typogate check``)."""


class HoldError(TypogateError, ValueError):
    """A hold action that cannot be done; the message says why.

    Here rather than beside the quarantine, like :class:`StoreURLError`: the hold commands
    catch it without importing the store (half of ``typogate --help``)."""


class CannotListen(TypogateError, OSError):
    """A listener could not start: its address is taken, or not this machine's."""

    def __init__(self, what: str, address: str, why: str) -> None:
        super().__init__(f"cannot run {what} on {address}: {why}")
        self.what = what
        self.address = address
        self.why = why

    @classmethod
    def of(cls, what: str, address: str, error: OSError) -> CannotListen:
        """From the ``OSError`` that binding raised (``Address already in use``)."""
        return cls(what, address, os.strerror(error.errno) if error.errno else str(error))
