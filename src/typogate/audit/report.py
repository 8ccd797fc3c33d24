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
from typogate.policy import Guard

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
            writer.writerow(finding.row())
    (out / "report.html").write_text(_html(data, found), encoding="utf-8")
    return data


def _html(data: dict[str, Any], found: list[Finding]) -> str:
    import plotly.graph_objects as go

    leaks = [f for f in found if f.leaked]
    months = Counter(f.delivery.month or "unknown" for f in leaks)
    figures = [
        (
            "Leaks per month (delivered to a suspected typo domain)",
            go.Bar(x=sorted(months), y=[months[m] for m in sorted(months)], marker_color="#c0392b"),
        ),
        (
            "Leaks per intended domain",
            go.Bar(
                x=[d for d, _ in data["top_intended_domains"]],
                y=[n for _, n in data["top_intended_domains"]],
                marker_color="#2c3e50",
            ),
        ),
        (
            "Top senders of leaked mail",
            go.Bar(
                y=[s or "(unknown)" for s, _ in data["top_senders"]][::-1],
                x=[n for _, n in data["top_senders"]][::-1],
                orientation="h",
                marker_color="#8e44ad",
            ),
        ),
    ]
    classes = Counter(f.reason for f in found)
    figures.append(
        (
            "Typo class mix (all findings)",
            go.Pie(labels=list(classes), values=list(classes.values()), hole=0.4),
        )
    )
    parts = []
    for number, (title, trace) in enumerate(figures):
        figure = go.Figure(trace)
        figure.update_layout(
            title=title,
            template="plotly_white",
            height=380,
            margin={"l": 40, "r": 20, "t": 50, "b": 40},
        )
        # plotly.js once, inline: the report opens without a network.
        parts.append(figure.to_html(full_html=False, include_plotlyjs=number == 0))
    status = data["findings_by_status"]
    cards = [
        ("messages read", f"{data['messages']:,}"),
        ("suspected typo domains", f"{data['suspected_typo_domains']:,}"),
        ("leaked (delivered)", f"{data['leaks']:,}"),
        ("bounced", f"{status.get('bounced', 0):,}"),
        ("deferred", f"{status.get('deferred', 0):,}"),
        ("malformed lines", f"{data['malformed']:,}"),
    ]
    rows = "".join(
        "<tr>" + "".join(f"<td>{_escape(v)}</td>" for v in f.row().values()) + "</tr>"
        for f in found[:500]
    )
    card_html = "".join(f'<div class="card"><b>{v}</b><span>{k}</span></div>' for k, v in cards)
    head = "".join(f"<th>{c}</th>" for c in FINDING_COLUMNS)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>typogate audit</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2rem;color:#222}}
.cards{{display:flex;gap:1rem;flex-wrap:wrap}}
.card{{background:#f4f6f8;border-radius:8px;padding:1rem 1.4rem;min-width:9rem}}
.card b{{display:block;font-size:1.6rem}} .card span{{color:#666}}
.grid{{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:1rem}}
table{{border-collapse:collapse;font-size:.85rem;margin-top:1rem}}
td,th{{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:left}}
</style></head><body>
<h1>How much has leaked?</h1>
<p>{data["lines"]:,} lines, {data["deliveries"]:,} deliveries to {data["recipient_domains"]:,}
recipient domains, read from {data["partitions"]} partitions.</p>
<div class="cards">{card_html}</div>
<div class="grid">{"".join(f"<div>{p}</div>" for p in parts)}</div>
<h2>Findings</h2><p>The first 500; all of them are in findings.csv.</p>
<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>
</body></html>
"""


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
