"""Telling people what changed: a webhook and a mail, sent only when something did.

The webhook gets one JSON document (``{"changes": [...]}``, each change an object of the
JSON contract and the SMTP probe's answer, ``probe``); the mail lists the same in plain
text, sent through the relay the admin names (usually the local MTA). A run with no new,
changed or gone look-alike sends nothing: a watch that writes every night only to say
"nothing" is soon ignored.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from typogate.monitor.snapshots import Finding


class AlertError(RuntimeError):
    """An alert that could not be delivered; the message says where and why."""


@dataclass(frozen=True, slots=True)
class MailAlert:
    """Where the alert mail goes and through which relay."""

    recipient: str
    relay_host: str = "127.0.0.1"
    relay_port: int = 25
    sender: str = "typogate@localhost"


def post_webhook(url: str, changes: Sequence[Finding], timeout: float = 10.0) -> None:
    """POST the changes as JSON to ``url``; raises :class:`AlertError` unless it says 2xx."""
    if not url.startswith(("http://", "https://")):
        raise AlertError(f"{url!r}: a webhook is an http:// or https:// URL")
    body = json.dumps({"changes": [_with_probe(finding) for finding in changes]}).encode()
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            answer.read()
    except urllib.error.HTTPError as error:
        raise AlertError(f"webhook {url}: answered {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        raise AlertError(f"webhook {url}: {getattr(error, 'reason', error)}") from None


def _with_probe(finding: Finding) -> dict[str, object]:
    probe = finding.observation.probe
    return finding.to_dict() | {"probe": probe.value if probe is not None else None}


def compose(changes: Sequence[Finding], sender: str, recipient: str) -> EmailMessage:
    """The alert mail: one line per change, in words."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"
    message["Subject"] = f"typogate monitor: {len(changes)} look-alike(s) changed"
    lines = ["Look-alikes of your domains that changed since the last run:", ""]
    for finding in changes:
        look_alike, facts = finding.observation.look_alike, finding.observation.facts
        mx = f" (mail to {', '.join(facts.mx)})" if facts.mx else ""
        probe = finding.observation.probe
        said = f", {probe.in_words}" if probe is not None and probe.answered else ""
        lines.append(
            f"- {look_alike.domain} (for {look_alike.intended}): {finding.change.value}, "
            f"now {facts.state.value}{mx}{said}"
        )
    message.set_content("\n".join(lines) + "\n")
    return message


def send_mail(alert: MailAlert, changes: Sequence[Finding], timeout: float = 30.0) -> None:
    """Send the alert mail; raises :class:`AlertError` when the relay does not take it."""
    message = compose(changes, alert.sender, alert.recipient)
    try:
        asyncio.run(
            aiosmtplib.send(
                message,
                hostname=alert.relay_host,
                port=alert.relay_port,
                timeout=timeout,
                start_tls=False,
            )
        )
    except (aiosmtplib.SMTPException, OSError) as error:
        raise AlertError(f"alert mail via {alert.relay_host}:{alert.relay_port}: {error}") from None
