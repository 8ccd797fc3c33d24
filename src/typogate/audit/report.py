"""The audit's report: summary.json, findings.csv and a self-contained report.html."""

from __future__ import annotations

import csv
import datetime
import json
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from typogate.audit.deliveries import RANK, Delivery, Status
from typogate.audit.engines import Outcome
from typogate.domains import ascii_form, printable_form
from typogate.policy import Guard
from typogate.spreadsheet import cell

FINDING_COLUMNS = [
    "time",
    "sender",
    "recipient",
    "intended_domain",
    "reason",
    "action",
    "status",
    "source",
]


@dataclass(frozen=True, slots=True)
class Finding:
    """A message to a suspected typo domain, with what typogate thinks was meant."""

    delivery: Delivery
    intended: str
    reason: str
    action: str

    @property
    def leaked(self) -> bool:
        return self.delivery.status is Status.SENT

    def row(self) -> dict[str, str]:
        d = self.delivery
        return {
            "time": d.time,
            "sender": d.sender,
            "recipient": d.recipient,
            "intended_domain": self.intended,
            "reason": self.reason,
            "action": self.action,
            "status": d.status.value,
            "source": d.where,
        }


def findings(outcome: Outcome, guard: Guard) -> list[Finding]:
    """One finding per message recipient, oldest first (then by source and line).

    A retried delivery counts once, with its final status; a held message counts as held
    until a delivery of it is logged (then as that delivery: its time, its sender), or as
    released or deleted when ``postsuper`` did that and nothing was delivered.
    """
    final: dict[tuple[str, str], Delivery] = {}
    others: list[Delivery] = []
    for delivery in outcome.suspects:
        if not delivery.queue_id:
            others.append(delivery)
            continue
        key = (delivery.queue_id, delivery.recipient.lower())
        kept = final.get(key)
        if kept is None or RANK[delivery.status] >= RANK[kept.status]:
            final[key] = delivery
    for key, delivery in final.items():
        end = outcome.hold_ends.get(key[0])
        if delivery.status is Status.HELD and end is not None:
            final[key] = replace(delivery, status=Status(end.value))
    chosen = sorted([*final.values(), *others], key=_in_time)
    out = []
    for delivery in chosen:
        verdict = guard.judge_domain(delivery.recipient.rpartition("@")[2])
        intended = verdict.suggestion or " | ".join(verdict.alternatives)
        out.append(Finding(delivery, intended, verdict.reason, verdict.action.value))
    return out


def _in_time(delivery: Delivery) -> tuple[bool, datetime.datetime, str, int, str]:
    """Oldest first; deliveries without a readable time last, in source order."""
    moment = delivery.moment
    return (
        moment is None,
        moment or datetime.datetime.min,
        delivery.source,
        delivery.line,
        delivery.recipient,
    )


def summary(outcome: Outcome, found: list[Finding], extra: dict[str, Any]) -> dict[str, Any]:
    leaks = [f for f in found if f.leaked]
    return {
        **extra,
        "partitions": outcome.parts,
        "lines": outcome.lines,
        "messages": outcome.messages,
        "deliveries": outcome.deliveries,
        "deliveries_by_status": dict(sorted(outcome.by_status.items())),
        "recipient_domains": len(outcome.domains),
        "suspected_typo_domains": len(
            {f.delivery.recipient.rpartition("@")[2].lower() for f in found}
        ),
        "findings": len(found),
        "findings_by_status": dict(sorted(Counter(f.delivery.status.value for f in found).items())),
        "leaks": len(leaks),
        "top_typo_domains": Counter(
            f.delivery.recipient.rpartition("@")[2].lower() for f in found
        ).most_common(20),
        "top_intended_domains": Counter(f.intended for f in leaks).most_common(20),
        "top_senders": Counter(f.delivery.sender for f in leaks).most_common(20),
        "malformed": outcome.malformed,
        "malformed_examples": outcome.malformed_examples,
    }


def write(
    out: Path, outcome: Outcome, found: list[Finding], extra: dict[str, Any]
) -> dict[str, Any]:
    """Write the three files into ``out``; returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    data = summary(outcome, found, extra)
    (out / "summary.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    with open(out / "findings.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=FINDING_COLUMNS)
        writer.writeheader()
        for finding in found:
            writer.writerow({key: cell(value) for key, value in finding.row().items()})
    (out / "report.html").write_text(_html(data, found), encoding="utf-8")
    return data


# The most month labels the per-month chart writes under its bars; a longer history labels
# every second, third... month (every bar is drawn).
MONTH_LABELS = 24


def _months(leaks: list[Finding]) -> tuple[list[str], list[int]]:
    """Every month from the first leak's to the last's (months without a leak as 0), as
    ``Jan 2025`` labels, then ``unknown`` for leaks without a date; and the counts."""
    counts = Counter(f.delivery.month for f in leaks)
    dated = sorted(m for m in counts if len(m) == 7 and m[:4].isdigit() and "01" <= m[5:] <= "12")
    labels: list[str] = []
    values: list[int] = []
    if dated:
        year, month = int(dated[0][:4]), int(dated[0][5:])
        while f"{year}-{month:02d}" <= dated[-1]:
            key = f"{year}-{month:02d}"
            labels.append(datetime.date(year, month, 1).strftime("%b %Y"))
            values.append(counts.pop(key, 0))
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    unknown = sum(counts.values())
    if unknown:
        labels.append("unknown")
        values.append(unknown)
    return labels, values


def _figures(data: dict[str, Any], found: list[Finding]) -> list[dict[str, Any]]:
    """The report's charts as plotly figures (JSON-ready dicts)."""
    import plotly.graph_objects as go

    labels, values = _months([f for f in found if f.leaked])
    step = max(1, -(-len(labels) // MONTH_LABELS))  # ceiling division; 1 with no leak
    classes = Counter(f.reason for f in found)
    charts = [
        (
            "months",
            "Leaks per month (delivered to a suspected typo domain)",
            go.Bar(x=labels, y=values, marker_color="#c0392b"),
            {
                "type": "category",
                "tickmode": "array",
                "tickvals": labels[::step],
                "tickangle": -45 if len(labels) > 6 else 0,
                "automargin": True,
            },
        ),
        (
            "intended",
            "Leaks per intended domain",
            go.Bar(
                x=[d for d, _ in data["top_intended_domains"]],
                y=[n for _, n in data["top_intended_domains"]],
                marker_color="#2c3e50",
            ),
            {"type": "category", "automargin": True},
        ),
        (
            "senders",
            "Top senders of leaked mail",
            go.Bar(
                y=[s or "(unknown)" for s, _ in data["top_senders"]][::-1],
                x=[n for _, n in data["top_senders"]][::-1],
                orientation="h",
                marker_color="#8e44ad",
            ),
            {"automargin": True},
        ),
        (
            "classes",
            "Typo class mix (all findings)",
            go.Pie(labels=list(classes), values=list(classes.values()), hole=0.4),
            {},
        ),
    ]
    figures = []
    for name, title, trace, xaxis in charts:
        figure = go.Figure(trace)
        figure.update_layout(
            title=title,
            template="plotly_white",
            height=380,
            margin={"l": 40, "r": 20, "t": 50, "b": 40},
            xaxis=xaxis,
            yaxis={"automargin": True},
        )
        figures.append({"id": f"chart-{name}", **json.loads(figure.to_json())})
    return figures


# Draws every chart once the page is laid out, and again whenever a chart's box changes
# size (a window resized, a scroll bar appearing): a chart drawn before the grid had all
# its cells was as wide as the page and cut off by its cell.
_DRAW = """
document.addEventListener("DOMContentLoaded", () => {
  const figures = JSON.parse(document.getElementById("figures").textContent);
  const resized = new ResizeObserver((boxes) => {
    for (const box of boxes) Plotly.Plots.resize(box.target);
  });
  for (const figure of figures) {
    const box = document.getElementById(figure.id);
    Plotly.newPlot(box, figure.data, figure.layout, {displaylogo: false, responsive: true});
    resized.observe(box);
  }
});
"""


def _html(data: dict[str, Any], found: list[Finding]) -> str:
    from plotly.offline import get_plotlyjs

    figures = _figures(data, found)
    # JSON in a data block: "<" escaped so that no text of the logs can close the block.
    figures_json = json.dumps(figures).replace("<", "\\u003c")
    status = data["findings_by_status"]
    cards = [
        ("messages read", f"{data['messages']:,}"),
        ("suspected typo domains", f"{data['suspected_typo_domains']:,}"),
        ("leaked (delivered)", f"{data['leaks']:,}"),
        ("bounced", f"{status.get('bounced', 0):,}"),
        ("deferred", f"{status.get('deferred', 0):,}"),
        ("held (not delivered)", f"{status.get('held', 0):,}"),
        ("malformed lines", f"{data['malformed']:,}"),
    ]
    rows = "".join(
        "<tr>" + "".join(_cell(key, value) for key, value in f.row().items()) + "</tr>"
        for f in found[:500]
    )
    card_html = "".join(f'<div class="card"><b>{v}</b><span>{k}</span></div>' for k, v in cards)
    head = "".join(f"<th>{c}</th>" for c in FINDING_COLUMNS)
    charts = "".join(f'<div class="chart" id="{f["id"]}"></div>' for f in figures)
    unread = "".join(
        f"<li><code>{_escape(p['path'])}</code>: {_escape(p['error'])}</li>"
        for p in data.get("input_errors", [])
    )
    problems = f'<h2>Not read</h2><ul class="input-errors">{unread}</ul>' if unread else ""
    # plotly.js once, inline: the report opens without a network.
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>typogate audit</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font-family:system-ui,sans-serif;margin:2rem;color:#222}}
.cards{{display:flex;gap:1rem;flex-wrap:wrap}}
.card{{background:#f4f6f8;border-radius:8px;padding:1rem 1.4rem;min-width:9rem}}
.card b{{display:block;font-size:1.6rem}} .card span{{color:#666}}
.grid{{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(480px,100%),1fr));gap:1rem}}
.chart{{min-width:0;height:380px}}
table{{border-collapse:collapse;font-size:.85rem;margin-top:1rem}}
td,th{{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:left}}
td:first-child{{white-space:nowrap}}
</style></head><body>
<h1>How much has leaked?</h1>
<p>{data["lines"]:,} lines, {data["deliveries"]:,} deliveries to {data["recipient_domains"]:,}
recipient domains, read from {data["partitions"]} partitions.</p>
<div class="cards">{card_html}</div>
{problems}
<div class="grid">{charts}</div>
<h2>Findings</h2><p>The first 500, oldest first; all of them are in findings.csv.</p>
<table class="findings"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>
<script type="application/json" id="figures">{figures_json}</script>
<script>{get_plotlyjs()}</script>
<script>{_DRAW}</script>
</body></html>
"""


def _cell(column: str, value: str) -> str:
    # A recipient whose domain is not ASCII with its A-label form beneath, so that a
    # look-alike (ivan@аrmy.mil, a Cyrillic а) shows for what it is, as on the web pages.
    if column == "recipient" and (written := ascii_form(value)) != value:
        return f"<td>{_escape(value)}<br><small>{_escape(written)}</small></td>"
    return f"<td>{_escape(value)}</td>"


def _escape(text: str) -> str:
    # Text of the logs, shown: a direction override or a control as its escape, too.
    return printable_form(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
