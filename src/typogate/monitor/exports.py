"""Look-alikes out to other tools: a Postfix access map and CSV.

The access map is for ``check_recipient_access`` (docs/monitor.md): one line per
look-alike, ``REJECT`` with a text that names the intended domain, so that Postfix refuses
a slip at RCPT even without typogate's policy service. An IDN look-alike gets a line in
both forms (A-label and Unicode), since a client using SMTPUTF8 sends the Unicode one; the
text names it in A-label form, as the gateway's answers do (ASCII, and the look-alike shown
for what it is). Build it with ``postmap`` like any access map.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from enum import StrEnum
from typing import TextIO

from typogate.domains import ascii_form
from typogate.monitor.snapshots import Change, Finding
from typogate.spreadsheet import cell

CSV_COLUMNS = (
    "domain",
    "intended",
    "probability",
    "rank",
    "state",
    "mx",
    "spf",
    "dmarc",
    "change",
    "probe",
)


class Export(StrEnum):
    """The formats ``--export`` writes."""

    ACCESS = "access"
    CSV = "csv"


def write(kind: Export, findings: Iterable[Finding], out: TextIO) -> int:
    """Write ``findings`` in ``kind``'s format; returns the number of look-alikes written."""
    if kind is Export.ACCESS:
        return write_access_map(findings, out)
    return write_csv(findings, out)


def write_access_map(findings: Iterable[Finding], out: TextIO) -> int:
    """A Postfix access map refusing mail to every look-alike that exists."""
    out.write("# typogate monitor: look-alikes of the protected domains (postmap this file)\n")
    count = 0
    for finding in findings:
        observation = finding.observation
        if not observation.exists or finding.change is Change.GONE:
            continue
        look_alike = observation.look_alike
        intended = ascii_form(look_alike.intended)
        text = (
            f"REJECT 5.1.2 {look_alike.ascii} is a look-alike of {intended}; "
            f"did you mean {intended}?"
        )
        out.write(f"# {look_alike.domain}: {observation.facts.state.value}\n")
        for key in dict.fromkeys((look_alike.ascii, look_alike.domain)):
            out.write(f"{key}\t{text}\n")
        count += 1
    return count


def write_csv(findings: Iterable[Finding], out: TextIO) -> int:
    """The JSON contract's columns (``mx`` space-separated) and the probe's answer."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for finding in findings:
        row = finding.to_dict()
        probe = finding.observation.probe
        row["mx"] = " ".join(finding.observation.facts.mx)
        row["probe"] = probe.value if probe is not None else ""
        writer.writerow([cell(row[column]) for column in CSV_COLUMNS])
        count += 1
    return count
