"""One log line per thing that happened to mail, as ``key=value`` pairs (logfmt).

Log tools (journald's ``grep``, Loki's and Vector's logfmt parsers, ``awk``) read these
without a pattern per message; docs/operations.md lists the keys. A value is written bare
when it is one printable word, else in double quotes with JSON's escapes, so a recipient
or a reason text can never break a line or forge a key.
"""

from __future__ import annotations

import json
import re

_BARE = re.compile(r"[^\s\"=\\\x00-\x1f\x7f]+")


def logfmt(**fields: object) -> str:
    """``key=value`` pairs in the order given; ``None`` values are left out, sequences
    are joined with commas, floats keep three decimals."""
    pairs = []
    for key, value in fields.items():
        if value is None:
            continue
        if isinstance(value, float):
            text = f"{value:.3f}"
        elif isinstance(value, list | tuple):
            text = ",".join("" if item is None else str(item) for item in value)
        else:
            text = str(value)
        if not (text.isprintable() and _BARE.fullmatch(text)):
            text = _quoted(text)
        pairs.append(f"{key}={text}")
    return " ".join(pairs)


def _quoted(text: str) -> str:
    # JSON escapes quotes, backslashes and C0 controls; anything else a terminal or a log
    # tool might take for a line break (U+2028, U+0085) or cannot encode (a lone
    # surrogate from undecodable input) is escaped too.
    quoted = json.dumps(text, ensure_ascii=False)
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in quoted)
