"""Which keys sit next to each other on the keyboards people type domains on."""

from __future__ import annotations

# QWERTY rows as they sit on the keyboard; digits row included (mail domains hold digits).
_ROWS = ("1234567890-", "qwertyuiop", "asdfghjkl", "zxcvbnm")
# Horizontal offset of each row against the one above, in key widths.
_OFFSETS = (0.0, 0.5, 0.75, 1.25)


def _neighbours() -> dict[str, frozenset[str]]:
    position: dict[str, tuple[int, float]] = {}
    for row, (keys, offset) in enumerate(zip(_ROWS, _OFFSETS, strict=True)):
        for column, key in enumerate(keys):
            position[key] = (row, column + offset)
    table: dict[str, set[str]] = {key: set() for key in position}
    for key, (row, x) in position.items():
        for other, (other_row, other_x) in position.items():
            if other != key and abs(row - other_row) <= 1 and abs(x - other_x) <= 1.0:
                table[key].add(other)
    return {key: frozenset(keys) for key, keys in table.items()}


NEIGHBOURS: dict[str, frozenset[str]] = _neighbours()


def adjacent(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` are neighbouring keys (a fat-finger substitution)."""
    return b in NEIGHBOURS.get(a, ())
