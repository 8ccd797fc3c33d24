"""typogate: catch mail addressed to a look-alike domain before it leaves.

>>> import typogate
>>> verdict = typogate.check("john@army.ml")
>>> verdict.action, verdict.suggestion
(<Action.REJECT: 'reject'>, 'army.mil')
"""

from __future__ import annotations

from functools import lru_cache

from typogate.config import Config
from typogate.domains import InvalidAddress
from typogate.errors import ConfigError, TypogateError
from typogate.policy import Guard, Verdict
from typogate.vocabulary import Action

__all__ = [
    "Action",
    "Config",
    "ConfigError",
    "Guard",
    "InvalidAddress",
    "TypogateError",
    "Verdict",
    "check",
]
__version__ = "0.1.0"


@lru_cache(maxsize=1)
def _default_guard() -> Guard:
    # Built on the first check() and kept for the process: the index takes ~0.1 s to build.
    return Guard()


def check(recipient: str, sender: str | None = None, *, shown_as: str | None = None) -> Verdict:
    """Judge one recipient with the default configuration (the built-in ``us-gov`` profile).

    ``shown_as``: the display name the sender sees the recipient under, where known (an
    add-in of a mail program knows it), as :meth:`Guard.evaluate` takes it. For your own
    domain lists build a :class:`Guard` from a :class:`Config` and reuse it.
    Raises :class:`InvalidAddress` when ``recipient`` is not a valid address.
    """
    return _default_guard().evaluate(recipient, sender, shown_as=shown_as)
