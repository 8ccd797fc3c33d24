"""Daily reports by mail to the intended organisations: how much of their mail went astray.

The store sums a report (``SinkHistory.intended_reports``: messages per look-alike, sending
domain, client address range and day, as JSON and as a short summary); here it is mailed.
An organisation that registered a contact (``[[sink.reports]]``, opt-in, like a DMARC
aggregate report address) gets each day's report for its domain and the domains under it,
once, whichever sink instance sends it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import aiosmtplib

from typogate.config import ReportContact, Sink
from typogate.store.sink_log import IntendedReport, ReportState, SinkHistory

log = logging.getLogger(__name__)

_CATCH_UP_DAYS = 7  # unsent days looked back on, after a sink was down over midnight


def covered_by(contact: ReportContact) -> Callable[[str], str | None]:
    """The report key of a contact: its intended domain and every domain under it."""
    own = contact.intended.strip(".").lower()

    def key(intended: str) -> str | None:
        return own if intended == own or intended.endswith("." + own) else None

    return key


def report_for(history: SinkHistory, contact: ReportContact, day: date) -> IntendedReport | None:
    """One contact's report for one day, or None when no mail for it went astray."""
    found = history.intended_reports(day, day, covered_by(contact))
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
    history: SinkHistory, settings: Sink, days: Iterable[date] | None = None
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
    settings: Sink,
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
