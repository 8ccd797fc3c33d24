"""CSV that people open in a spreadsheet: a cell is data, never a formula.

Excel, LibreOffice and Google Sheets run a cell that starts with ``=``, ``+``, ``-`` or ``@``
(or a tab or carriage return) as a formula (CSV injection). typogate's CSV files hold what
came from mail, logs and DNS: an address ``=1+1@army.ml`` is valid, and a look-alike's owner
names its mail host as it likes. Such a cell gets a leading ``'``, which spreadsheets show
as text (OWASP's advice); every other value is written as it is.
"""

from __future__ import annotations

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> object:
    """``value`` for one CSV cell: text a spreadsheet would run, with a leading ``'``."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return f"'{value}"
    return value
