"""A run of the monitor as a snapshot, and what changed since the last one.

Only look-alikes that exist are kept from run to run: the thousands that do not would fill
the store and say nothing. So a look-alike is ``new`` when it exists now and did not at its
last observation (or was never seen), ``changed`` when its state, mail exchangers, SPF or
DMARC differ, or when the SMTP probe's answer went from refusing unknown recipients to
taking any or back since the last time its server answered (a server that did not
answer, or a run that did not probe, is no news), ``same`` when nothing does, and
``gone`` when it existed and is now NXDOMAIN.
A look-alike that was not asked this run (the protected list changed) is not compared, and
one that DNS did not answer for (``unresolved``) is no news: shown, never alerted on, and
not kept, so that its last known state stays the latest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from typogate.monitor.lookalikes import LookAlike
from typogate.monitor.mail_state import MailFacts, MailState
from typogate.vocabulary import Change, Probe


@dataclass(frozen=True, slots=True)
class Observation:
    """A look-alike as this run saw it: the ranking, the DNS facts, the probe if asked."""

    look_alike: LookAlike
    facts: MailFacts
    probe: Probe | None = None

    @property
    def exists(self) -> bool:
        return self.facts.state is not MailState.NXDOMAIN


@dataclass(frozen=True, slots=True)
class Finding:
    """An observation and its change since the last snapshot: one line of the report."""

    observation: Observation
    change: Change

    def to_dict(self) -> dict[str, object]:
        """The JSON contract: exactly these keys, in this order."""
        look_alike, facts = self.observation.look_alike, self.observation.facts
        return {
            "domain": look_alike.domain,
            "intended": look_alike.intended,
            "probability": round(look_alike.probability, 6),
            "rank": look_alike.rank,
            "state": facts.state.value,
            "mx": list(facts.mx),
            "spf": facts.spf,
            "dmarc": facts.dmarc,
            "change": self.change.value,
        }


def compare(
    observations: Iterable[Observation],
    previous: Mapping[str, MailFacts],
    probed: Mapping[str, Probe] | None = None,
) -> list[Finding]:
    """Each observation with its change against ``previous`` (A-label domain -> the facts
    of its last observation, nxdomain included for the ones that went) and ``probed``
    (the last answer the probe had from its server, for those it had one from)."""
    probed = probed or {}
    findings = []
    for observation in observations:
        before = previous.get(observation.look_alike.ascii)
        was = probed.get(observation.look_alike.ascii)
        existed = before is not None and before.state is not MailState.NXDOMAIN
        if observation.facts.state is MailState.UNRESOLVED:
            # No answer is no news: nothing is known to have changed.
            change = Change.SAME if existed else Change.NEW
        elif not observation.exists:
            change = Change.GONE if existed else Change.SAME
        elif not existed:
            change = Change.NEW
        elif before == observation.facts and not (
            was is not None
            and observation.probe is not None
            and observation.probe.answered
            and was is not observation.probe
        ):
            change = Change.SAME
        else:
            change = Change.CHANGED
        findings.append(Finding(observation, change))
    return findings


def reported(findings: Iterable[Finding], everything: bool = False) -> list[Finding]:
    """What a run shows: look-alikes that exist and those that went (``everything``: all)."""
    return [
        finding
        for finding in findings
        if everything or finding.observation.exists or finding.change is Change.GONE
    ]


def changes(findings: Iterable[Finding]) -> list[Finding]:
    """The findings an alert is about: new, changed and gone look-alikes (one that DNS did
    not answer for is no news)."""
    return [
        finding
        for finding in findings
        if finding.change is not Change.SAME
        and finding.observation.facts.state is not MailState.UNRESOLVED
    ]


def kept(findings: Iterable[Finding]) -> list[Finding]:
    """What a snapshot keeps: look-alikes that exist and those that went. One that DNS did
    not answer for is left out, so that its last known state stays the latest."""
    return [
        finding
        for finding in findings
        if finding.observation.facts.state is not MailState.UNRESOLVED
        and (finding.observation.exists or finding.change is Change.GONE)
    ]
