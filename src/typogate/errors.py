"""The root of every error typogate raises on purpose.

Each part defines its own errors next to the code that raises them (``InvalidAddress`` in
``domains``, ``HoldError`` in the gateway, ...), all under :class:`TypogateError`, so a
caller can catch everything typogate means to say with one ``except``. Errors that are also
bad values subclass ``ValueError`` as well.
"""

from __future__ import annotations


class TypogateError(Exception):
    """Something typogate could not do; the message says why in words a person reads."""


class ConfigError(TypogateError, ValueError):
    """A configuration that cannot be used; the message names the file and the key."""
