"""report.html in a real Chromium at ordinary desktop widths: every month of the leaks chart
is drawn and labelled inside its chart (the charts were drawn as wide as the page and cut
off by their grid cell: 1400-1920 px showed only Jan-Jun of eleven months), and the
findings table is oldest first."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from typogate import Config
from typogate.audit import run, write_report

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov"]
QUIET = "Jun"  # no leak that month: drawn as 0, still labelled


def leak_log(path: Path) -> list[str]:
    """A log of leaks over eleven months of 2025, written newest month first (so file order
    is not time order); the recipients oldest first."""
    lines: list[str] = []
    recipients: list[str] = []
    for number, month in reversed(list(enumerate(MONTHS, start=1))):
        if month == QUIET:
            continue
        for k in range(number % 3 + 1):
            qid, recipient = f"Q{number:02d}{k}", f"p{number:02d}{k}@army.ml"
            stamp = f"{month} {10 + k:2d} 09:00:0{k}"
            lines += [
                f"{stamp} mx1 postfix/qmgr[9]: {qid}: from=<s{k}@example.org>, size=9, nrcpt=1"
                " (queue active)",
                f"{stamp} mx1 postfix/smtp[8]: {qid}: to=<{recipient}>, relay=x[192.0.2.1]:25,"
                " delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)",
            ]
            recipients.append(recipient)
    path.write_text("\n".join(lines) + "\n")
    written = time.mktime((2025, 12, 15, 12, 0, 0, 0, 0, -1))  # syslog stamps: 2025
    os.utime(path, (written, written))
    return sorted(recipients)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, list[str]]:
    tmp = tmp_path_factory.mktemp("report")
    recipients = leak_log(tmp / "mail.log")
    config = Config.from_mapping({"domains": {"protected": ["army.mil", "example.org"]}})
    write_report(run([tmp / "mail.log"], config, workers=1), tmp / "out")
    return tmp / "out" / "report.html", recipients


@pytest.mark.parametrize("width", [1024, 1440, 1920])
def test_every_month_is_drawn_and_labelled_inside_its_chart(report, browser, width):
    html, recipients = report
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        page.goto(html.as_uri())
        chart = page.locator("#chart-months")
        ticks = chart.locator(".xtick text")
        page.wait_for_function(
            "() => document.querySelectorAll('#chart-months .xtick text').length === 11"
        )
        assert ticks.all_text_contents() == [f"{m} 2025" for m in MONTHS]
        box = chart.bounding_box()
        assert box is not None and box["x"] + box["width"] <= width
        bars = chart.locator(".bars .point path")
        assert bars.count() == 11
        for shown in [*ticks.all(), *bars.all()]:
            where = shown.bounding_box()
            assert where is not None
            assert box["x"] - 1 <= where["x"], (width, shown.text_content(), where, box)
            assert where["x"] + where["width"] <= box["x"] + box["width"] + 1, (width, where, box)
        # June had no leak: a flat bar (its outline only) where its label is.
        heights = [b.bounding_box()["height"] for b in bars.all()]
        quiet = heights.pop(MONTHS.index(QUIET))
        assert quiet < 3 and min(heights) > 50, (quiet, heights)
        # The other charts fit their cells too.
        for other in ("#chart-intended", "#chart-senders", "#chart-classes"):
            svg = page.locator(f"{other} .main-svg").first.bounding_box()
            cell = page.locator(other).bounding_box()
            assert svg["width"] <= cell["width"] + 1, (width, other, svg, cell)
        shown = page.locator("table.findings tbody tr td:nth-child(3)").all_text_contents()
        assert shown == recipients  # oldest first, though the file is newest first
        page.screenshot(path=str(html.parent / f"report-{width}.png"), full_page=True)
    finally:
        context.close()
