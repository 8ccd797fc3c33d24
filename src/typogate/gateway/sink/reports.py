"""Daily reports to the intended organisations: how much of their mail went astray.

One report per intended domain (``army.mil``, with its subdomains) and period: messages per
look-alike, per sending domain, per client address range and per day, as JSON (for
machines, like a DMARC aggregate report) and as a short summary a person reads. An
organisation that registered a contact (``[[sink.reports]]``, opt-in) gets each day's
report by mail, once, whichever sink instance sends it.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

import aiosmtplib

from typogate.gateway.sink.settings import ReportContact, SinkSettings
from typogate.store.sink_log import ReportState, SinkCount, SinkHistory

log = logging.getLogger(__name__)

REPORT_VERSION = 1
_TOP = 5  # lines per list in the summary (the JSON has them all)
_CATCH_UP_DAYS = 7  # unsent days looked back on, after a sink was down over midnight


@dataclass
class IntendedReport:
    """Misdirected mail meant for one domain in one period (UTC days, inclusive)."""

    intended: str
    since: str
    until: str
    messages: int = 0
    recipients: int = 0
    by_day: Counter[str] = field(default_factory=Counter)
    by_lookalike: Counter[str] = field(default_factory=Counter)
    by_sender_domain: Counter[str] = field(default_factory=Counter)
    by_client_range: Counter[str] = field(default_factory=Counter)

    def to_json(self, reporter: str) -> dict[str, Any]:
        """The machine-readable report (documented in docs/sink.md)."""

        def listed(counter: Counter[str], key: str) -> list[dict[str, Any]]:
            return [{key: name, "messages": n} for name, n in _ranked(counter)]

        return {
            "report": {
                "type": "typogate-sink",
                "version": REPORT_VERSION,
                "reporter": reporter,
                "intended": self.intended,
                "since": self.since,
                "until": self.until,
            },
            "messages": self.messages,
            "recipients": self.recipients,
            "by_day": [{"day": d, "messages": self.by_day[d]} for d in sorted(self.by_day)],
            "by_lookalike": listed(self.by_lookalike, "lookalike"),
            "by_sender_domain": listed(self.by_sender_domain, "sender_domain"),
            "by_client_range": listed(self.by_client_range, "client_range"),
        }

    def summary(self, reporter: str) -> str:
        """A short plain-text account for the people of the intended organisation."""
        period = self.since if self.since == self.until else f"{self.since} to {self.until}"
        lines = [
            f"Mail meant for {self.intended} that was sent to look-alike domains, {period} (UTC).",
            "",
            f"{self.messages} message(s) to {self.recipients} different recipient(s) were "
            f"refused by the sink at {reporter}, before any content was sent. Each sender was "
            f"told the address they meant; nothing was delivered or kept.",
            "",
        ]
        for title, counter in (
            ("Look-alike domains", self.by_lookalike),
            (
                "Sending domains (whose users should check their address books)",
                self.by_sender_domain,
            ),
            ("Sending networks", self.by_client_range),
        ):
            lines.append(f"{title}:")
            ranked = _ranked(counter)
            lines += [f"  {n:>6}  {name or '(bounce: no sender)'}" for name, n in ranked[:_TOP]]
            if len(ranked) > _TOP:
                lines.append(f"  and {len(ranked) - _TOP} more (see the JSON attachment)")
            lines.append("")
        lines.append("The attached JSON holds the same figures for machines.")
        return "\n".join(lines) + "\n"


def _ranked(counter: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))


def build(
    counts: Iterable[SinkCount],
    recipients: dict[str, int],
    since: date,
    until: date,
    key: Callable[[str], str | None] = lambda intended: intended,
) -> list[IntendedReport]:
    """Sum the store's counts into one report per ``key(intended)`` (by default each
    intended domain; ``None`` leaves a domain out), largest first."""
    reports: dict[str, IntendedReport] = {}
    for count in counts:
        name = key(count.intended)
        if name is None:
            continue
        report = reports.get(name)
        if report is None:
            report = reports[name] = IntendedReport(name, since.isoformat(), until.isoformat())
        report.messages += count.messages
        report.by_day[count.day] += count.messages
        report.by_lookalike[count.lookalike] += count.messages
        report.by_sender_domain[count.sender_domain] += count.messages
        report.by_client_range[count.client_range] += count.messages
    for intended, n in recipients.items():
        name = key(intended)
        if name is not None and name in reports:
            reports[name].recipients += n
    return sorted(reports.values(), key=lambda r: (-r.messages, r.intended))


def covered_by(contact: ReportContact) -> Callable[[str], str | None]:
    """The report key of a contact: its intended domain and every domain under it."""
    own = contact.intended.strip(".").lower()

    def key(intended: str) -> str | None:
        return own if intended == own or intended.endswith("." + own) else None

    return key


def report_for(history: SinkHistory, contact: ReportContact, day: date) -> IntendedReport | None:
    """One contact's report for one day, or None when no mail for it went astray."""
    key = covered_by(contact)
    found = build(history.counts(day, day), history.recipients(day, day), day, day, key)
    return found[0] if found else None


def report_message(
    report: IntendedReport, sender: str, contact: str, reporter: str
) -> EmailMessage:
    """The mail that carries a report: the summary as text, the JSON as an attachment."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = contact
    message["Subject"] = (
        f"Misdirected mail for {report.intended}: {report.messages} message(s) on {report.since}"
    )
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message["X-Typogate-Report"] = f"{report.intended} {report.since}"
    message.set_content(report.summary(reporter))
    document = json.dumps(report.to_json(reporter), indent=2, ensure_ascii=False)
    message.add_attachment(
        document.encode(),
        maintype="application",
        subtype="json",
        filename=f"typogate-sink-{report.intended}-{report.since}.json",
    )
    return message


@dataclass(frozen=True, slots=True)
class Delivery:
    """What became of one report: sent, failed (and why), or already taken."""

    intended: str
    day: str
    contact: str
    messages: int
    state: ReportState | None  # None: another instance sent it, or is sending it
    detail: str


async def send_due(
    history: SinkHistory, settings: SinkSettings, days: Iterable[date] | None = None
) -> list[Delivery]:
    """Send each registered contact its report for every day in ``days`` (by default the
    last week up to yesterday) that has misdirected mail and no report sent yet. Each report
    is claimed in the store first, so one instance sends it even when several run."""
    if not settings.report_relay:
        return []
    host, _, port = settings.report_relay.rpartition(":")
    today = datetime.now(UTC).date()
    wanted = (
        list(days)
        if days is not None
        else [today - timedelta(days=n) for n in range(_CATCH_UP_DAYS, 0, -1)]
    )
    sent_or_taken = {
        (r.intended, r.day)
        for r in history.reports(limit=10_000)
        if r.state is not ReportState.FAILED
    }
    deliveries = []
    for contact in settings.reports:
        for day in wanted:
            if (contact.intended, day.isoformat()) in sent_or_taken:
                continue
            report = report_for(history, contact, day)
            if report is None:
                continue
            deliveries.append(
                await _deliver(history, settings, report, contact, host.strip("[]"), int(port))
            )
    return deliveries


async def _deliver(
    history: SinkHistory,
    settings: SinkSettings,
    report: IntendedReport,
    contact: ReportContact,
    host: str,
    port: int,
) -> Delivery:
    def outcome(state: ReportState | None, detail: str) -> Delivery:
        return Delivery(
            report.intended, report.since, contact.contact, report.messages, state, detail
        )

    if not history.claim_report(report.intended, report.since, contact.contact, report.messages):
        return outcome(None, "sent by another instance")
    message = report_message(report, settings.report_from, contact.contact, settings.hostname)
    try:
        await aiosmtplib.send(message, hostname=host, port=port, start_tls=False, timeout=60)
    except (aiosmtplib.SMTPException, OSError) as error:
        detail = f"not sent: {error}"
        log.warning("sink: report for %s %s %s", report.intended, report.since, detail)
        history.finish_report(report.intended, report.since, ReportState.FAILED, detail)
        return outcome(ReportState.FAILED, detail)
    detail = f"sent to {contact.contact} through {host}:{port}"
    history.finish_report(report.intended, report.since, ReportState.SENT, detail)
    log.info("sink: report for %s %s %s", report.intended, report.since, detail)
    return outcome(ReportState.SENT, detail)
