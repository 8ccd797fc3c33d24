"""Running the monitor over partitions of the protected list: here, or on a Dask cluster.

A partition is a few protected domains; a worker makes their look-alikes, asks DNS for
each (and probes, when asked) and sends back only what a report can show: look-alikes
that exist, those that existed at their last observation (to see them go), or everything
with ``everything``. So memory grows with the findings, not with the names asked, and a
list of thousands of protected domains runs in the same bounded space, a partition at a
time on each worker. Both engines merge in partition order: the same findings either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from typogate.domains import parse_domain
from typogate.monitor.lookalikes import DEFAULT_BUDGET, DEFAULT_COVERAGE, LookAlike, look_alikes
from typogate.monitor.mail_state import Lookup, MailFacts, MailState, mail_states
from typogate.monitor.probe import Network, probe_accept_all
from typogate.monitor.snapshots import Observation
from typogate.vocabulary import Probe

# Protected domains per partition: a few thousand names to ask, seconds of work, so that a
# progress bar moves and a cluster's workers share the load evenly.
PART_DOMAINS = 16


@dataclass(frozen=True)
class Settings:
    """What every worker needs: how to rank, how to ask DNS, what to keep."""

    lookup: Lookup
    coverage: float = DEFAULT_COVERAGE
    budget: float = DEFAULT_BUDGET
    real: frozenset[str] = frozenset()  # protected and known domains (A-label): never look-alikes
    watched: frozenset[str] = frozenset()  # look-alikes that existed at their last observation
    everything: bool = False  # keep the look-alikes that do not exist too
    probe_smtp: bool = False
    probe_port: int = 25
    probe_private: bool = False  # probe mail hosts at loopback and private addresses too
    own_networks: tuple[Network, ...] = ()  # the organisation's own: never probed


def partitions(protected: Sequence[str], size: int = PART_DOMAINS) -> list[tuple[str, ...]]:
    """The protected domains (A-label form) in partitions of ``size``, in order."""
    return [tuple(protected[at : at + size]) for at in range(0, len(protected), size)]


@dataclass(frozen=True, slots=True)
class PartResult:
    """What one partition sends back: how many look-alikes it asked DNS about, and the
    observations worth keeping."""

    asked: int
    observations: list[Observation]


# SMTP probes at once: each holds a connection to someone else's server for seconds.
_PROBES_AT_ONCE = 8


def run_part(part: tuple[str, ...], settings: Settings) -> PartResult:
    """Look-alikes of one partition's protected domains, asked and kept as the module says."""
    result: list[PartResult] = []
    # The result is handed out, not returned by the main task: Python 3.11's asyncio.run
    # formats that task, result and all, when it puts back the SIGINT handler (a repr of
    # every observation: a second of CPU on a large partition).
    asyncio.run(_observe(part, settings, result.append))
    return result[0]


async def _observe(
    part: tuple[str, ...], settings: Settings, hand_out: Callable[[PartResult], None]
) -> None:
    best: dict[str, LookAlike] = {}
    for text in part:
        for look_alike in look_alikes(
            parse_domain(text),
            coverage=settings.coverage,
            budget=settings.budget,
            real=settings.real,
        ):
            # A look-alike of two protected domains is reported for the likelier one.
            held = best.get(look_alike.ascii)
            if held is None or look_alike.probability > held.probability:
                best[look_alike.ascii] = look_alike
    facts = await mail_states(best, settings.lookup)
    kept = [
        (look_alike, facts[name])
        for name, look_alike in best.items()
        if facts[name].state is not MailState.NXDOMAIN
        or settings.everything
        or name in settings.watched
    ]
    probes: list[Probe | None] = [None] * len(kept)
    if settings.probe_smtp:
        limit = asyncio.Semaphore(_PROBES_AT_ONCE)

        async def probe(look_alike: LookAlike, found: MailFacts) -> Probe | None:
            async with limit:
                return await probe_accept_all(
                    look_alike.ascii,
                    found,
                    settings.lookup,
                    port=settings.probe_port,
                    private=settings.probe_private,
                    own=settings.own_networks,
                )

        probes = list(await asyncio.gather(*(probe(*pair) for pair in kept)))
    hand_out(
        PartResult(
            len(best),
            [
                Observation(look_alike, found, said)
                for (look_alike, found), said in zip(kept, probes, strict=True)
            ],
        )
    )


def merge(results: Iterable[PartResult]) -> tuple[int, list[Observation]]:
    """How many look-alikes were asked, and the partitions' observations in order; a
    look-alike found by two partitions once, for its likelier intended domain."""
    best: dict[str, Observation] = {}
    asked = 0
    for result in results:
        asked += result.asked
        for observation in result.observations:
            held = best.get(observation.look_alike.ascii)
            if held is None or observation.look_alike.probability > held.look_alike.probability:
                best[observation.look_alike.ascii] = observation
    return asked, list(best.values())
