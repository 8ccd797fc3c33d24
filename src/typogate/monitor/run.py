"""One run of the monitor, from a list of protected domains to findings: no CLI needed.

from typogate.monitor import Lookup, Nameserver, Settings, run_monitor

lookup = Lookup((Nameserver.parse("127.0.0.1:5353"),))
run = run_monitor(["army.mil"], Settings(lookup))
for finding in run.findings:
    print(finding.to_dict())
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from typogate import batch
from typogate.domains import InvalidAddress, parse_domain
from typogate.monitor.engines import Settings, merge, partitions, run_part
from typogate.monitor.mail_state import MailFacts, MailState
from typogate.monitor.snapshots import Finding, compare, reported
from typogate.vocabulary import Engine, Probe


class MonitorInputError(ValueError):
    """A protected domain that is not a domain; the message names it."""


@dataclass(frozen=True)
class MonitorRun:
    """The findings of a run (what it reports, in the order of the protected list, then
    by rank), and what it took: protected domains, look-alikes asked, seconds."""

    findings: list[Finding]
    protected: int
    asked: int
    seconds: float


def run_monitor(
    protected: Iterable[str],
    settings: Settings,
    previous: Mapping[str, MailFacts] | None = None,
    *,
    probed: Mapping[str, Probe] | None = None,
    engine: Engine = Engine.LOCAL,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> MonitorRun:
    """Find, rank and ask DNS about the look-alikes of ``protected`` (domains as written).

    ``previous`` maps A-label look-alikes to the facts of their last observation (the
    store's latest snapshot), and ``probed`` the SMTP probe's last answer from each
    one's server; each finding says what changed since. ``progress`` is told
    how many protected domains each finished partition held. Raises
    :class:`MonitorInputError` for a protected domain that is not a domain.
    """
    started = time.perf_counter()
    order: dict[str, int] = {}
    for text in protected:
        try:
            domain = parse_domain(text)
        except InvalidAddress as error:
            raise MonitorInputError(f"protected domain {error}") from None
        order.setdefault(domain.unicode, len(order))
    previous = previous or {}
    watched = frozenset(
        name for name, facts in previous.items() if facts.state is not MailState.NXDOMAIN
    )
    settings = replace(settings, watched=settings.watched | watched)
    real = settings.real | {parse_domain(text).ascii for text in order}
    settings = replace(settings, real=frozenset(real))
    parts = partitions(list(order))

    def advance(part: tuple[str, ...]) -> None:
        if progress is not None:
            progress(len(part))

    # One process unless asked for more: the DNS step is bound by the nameservers, not CPU.
    with batch.workers(engine, workers or 1, scheduler) as running:
        asked, observations = merge(running.map(run_part, parts, advance, settings=settings))
    findings = reported(compare(observations, previous, probed), settings.everything)
    findings.sort(
        key=lambda f: (
            order.get(f.observation.look_alike.intended, 0),
            f.observation.look_alike.rank,
        )
    )
    return MonitorRun(findings, len(order), asked, time.perf_counter() - started)
