"""Which domains become the organisation's known correspondents, and which never do.

Evidence comes from the store at start-up, from a log (``typogate learn``) and from the
mail as it flows. Mail received from a domain, or a sender's release, proves it real;
deliveries alone make a correspondent only of a domain that is no likely slip, so that
years of mail to ``army.ml`` never teach that it is written to on purpose.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from typogate.domains import Domain, InvalidAddress, explain, parse_domain
from typogate.policy import verdict as reasons
from typogate.policy.judge import (
    LOG_ODDS_FLOOR,
    LOG_PRIOR_KNOWN,
    SENDER_ADDRESS_NATS,
    DomainJudge,
    novelty_nats,
    numbered_siblings,
)
from typogate.policy.kept import LearnedSet, Standing
from typogate.policy.readings import parse_once
from typogate.policy.relationships import ORGANISATION, Related, Tie, party_name
from typogate.policy.sender import own_near
from typogate.policy.verdict import DomainVerdict
from typogate.vocabulary import Action, Evidence

# A domain the kept set does not hold: no evidence equals it, and it is not learned.
_UNKNOWN = (-1, -1, -1, 0)
# The standings as ints, tested for every correspondent domain (an enum's & is slower).
_STANDINGS = (Standing.LEARNED.value, Standing.FROM_DELIVERIES.value, Standing.RULED.value)


class Correspondents:
    """Teaches the judge's index the organisation's correspondents, and takes back those
    that later evidence shows to be slips."""

    def __init__(self, judge: DomainJudge) -> None:
        self._judge = judge
        self._index = judge.index
        self._relationships = judge.relationships
        self._learning = judge.config.learning
        # Correspondents learned from deliveries alone, kept on the judge: a near-twin that
        # answers their one sender may yet show one to be that sender's saved slip
        # (_forget_saved_slips).
        self._from_deliveries = judge.from_deliveries

    def learn(self, counts: dict[str, int]) -> None:
        """Take in the organisation's deliveries per recipient domain (see
        :meth:`typogate.Guard.learn`)."""
        domains = []
        for text, count in counts.items():
            try:
                domain = parse_domain(text)
            except InvalidAddress:
                continue
            tie = self._relationships.tie(ORGANISATION, domain.unicode)
            sent = count + (tie.sent if tie is not None else 0)
            received, released = (tie.received, tie.released) if tie is not None else (0, 0)
            self._relationships.put(
                ORGANISATION, domain.unicode, sent=sent, received=received, released=released
            )
            domains.append(domain)
        self._reconsider(domains)

    def learn_relationships(self, relationships: Iterable[Related]) -> None:
        """Take in relationships as the store keeps them (absolute counts at every level)."""
        self._weigh_again(self._take_in(relationships))

    def learned_set(self) -> LearnedSet:
        """The organisation's correspondent domains with their evidence and whether each is
        learned: what :meth:`restore` takes at the next start (:mod:`~typogate.policy.kept`)."""
        organisation = self._relationships.organisation()
        delivered = {domain.unicode for domain in self._from_deliveries}
        ruled = {domain.unicode for domain in self._judge.ruled}
        learned, by_deliveries, by_rule = _STANDINGS
        standings = {}
        for domain in self._index.domains:  # learned or listed; the organisation's: learned
            name = domain.unicode
            if name in organisation and domain in self._index:
                standing = learned
                if name in delivered:
                    standing |= by_deliveries
                if name in ruled:
                    standing |= by_rule
                standings[name] = standing
        return LearnedSet(
            {
                name: (tie.sent, tie.received, tie.released, standings.get(name, 0))
                for name, tie in organisation.items()
            }
        )

    def restore(self, kept: LearnedSet, relationships: Iterable[Related]) -> int:
        """Take in relationships as :meth:`learn_relationships` does, with the correspondents
        a start learned from them (``kept``): only the domains whose evidence changed since
        are weighed again, as a running process weighs what others stored. Returns how many
        were."""
        learned, delivered, ruled = _STANDINGS
        changed = []
        for domain in self._take_in(relationships):
            tie = self._relationships.tie(ORGANISATION, domain.unicode)
            if tie is None:  # no room (limits.learned_ties): not learned, as in a full start
                continue
            sent, received, released, standing = kept.domains.get(domain.unicode, _UNKNOWN)
            if (sent, received, released) != (tie.sent, tie.received, tie.released):
                changed.append(domain)
            if standing & learned and self._index.add(domain):
                if standing & ruled:
                    self._judge.ruled.add(domain)
                if standing & delivered:
                    self._from_deliveries.add(domain)
        self._judge.forget_verdicts()
        self._weigh_again(changed)
        return len(changed)

    def _weigh_again(self, domains: list[Domain]) -> None:
        """Weigh the organisation's domains whose evidence changed: take back the
        correspondents they show to be saved slips, then learn those that are now."""
        for domain in domains:
            self._forget_saved_slips(domain)
        self._reconsider(domains)

    def _take_in(self, relationships: Iterable[Related]) -> list[Domain]:
        """Keep each relationship's evidence; returns the organisation's domains."""
        domains = []
        for related in relationships:
            try:  # the store has what adapters and logs wrote: either IDNA form
                domain = parse_domain(related.recipient_domain)
            except InvalidAddress:
                continue
            self._relationships.put(
                related.sender,
                domain.unicode,
                sent=related.count,
                received=related.received,
                released=related.released,
                last_seen=related.last_seen.timestamp(),
            )
            if related.sender == ORGANISATION:
                domains.append(domain)
        return domains

    def observe(self, party: str | None, domain: str, evidence: Evidence) -> bool:
        """Take in one piece of evidence as mail flows (see :meth:`typogate.Guard.observe`);
        returns whether it counts."""
        try:
            known = parse_domain(domain)
        except InvalidAddress:
            return False
        if evidence is Evidence.RECEIVED and not self._answers(party, known):
            return False
        tie = self._relationships.observe(party, known.unicode, evidence)
        forgot = evidence is not Evidence.SENT and self._forget_saved_slips(known)
        if forgot or (self._may_become_known(tie) and known not in self._index):
            self._reconsider([known])
        return True

    def reweigh(self, domains: set[Domain]) -> None:
        """Take correspondents out of the index and weigh them again (those an allow rule
        taught, when the rules change): learned again if the evidence still says so."""
        for domain in domains:
            self._unlearn(domain)
        self._reconsider(list(domains))

    def held_back_by_twin(self, domain: str) -> tuple[str, str] | None:
        """Why deliveries did not make ``domain`` a correspondent (see
        :meth:`typogate.Guard.held_back_by_twin`)."""
        known = parse_once(domain)
        tie = self._relationships.tie(ORGANISATION, known.unicode)
        if (
            tie is None
            or known in self._index
            or self._proven(tie)
            or not self._delivered(tie, time.time())
        ):
            return None
        return self._own_twin(known)

    def _answers(self, party: str | None, domain: Domain) -> bool:
        """Whether mail from ``domain`` to ``party`` is a correspondent's: from a domain that
        is no likely slip, or in reply to ``party``'s own mail or release to it."""
        own = self._relationships.tie(party_name(party), domain.unicode) if party else None
        if own is not None and (own.sent or own.released):
            return True
        return not self._judge.slip_like(domain.ascii)

    def _may_become_known(self, tie: Tie) -> bool:
        learning = self._learning
        return (
            tie.sent >= learning.correspondent_mails
            or tie.received >= learning.proven_after
            or tie.released >= learning.proven_after
        )

    def _reconsider(
        self, domains: list[Domain], *, taken_back: frozenset[Domain] = frozenset()
    ) -> None:
        """Make correspondents of the domains whose evidence now says so, strongest first:
        mail received from a domain, or a release, proves it real; deliveries alone make a
        correspondent only of a domain the judge lets mail go to without an alert (years of
        mail to army.ml must never teach that army.ml is written to on purpose, nor fifteen
        deliveries to a saved address with two slips in it that the domain is real).
        ``taken_back``: correspondents this weighing took back already (see
        :meth:`_lighter_blocking`), not taken back twice."""
        judge = self._judge
        now = time.time()
        learned_before = bool(self._from_deliveries)  # from deliveries alone
        taught: list[Domain] = []
        blocked: list[Domain] = []
        blocking: set[Domain] = set()
        ranked = []
        for domain in domains:
            tie = self._relationships.tie(ORGANISATION, domain.unicode)
            if tie is None or domain in self._index or not self._may_become_known(tie):
                continue
            ranked.append((judge.weight(tie, now), domain, tie))
        ranked.sort(key=lambda entry: (-entry[0], entry[1].ascii))
        for weight, domain, tie in ranked:
            proven = self._proven(tie)
            verdict = judge.fresh_verdict(domain.ascii)
            if verdict.action is Action.ALLOW:
                learned = proven or (self._delivered(tie, now) and self._own_twin(domain) is None)
            elif judge.of_protected(verdict):
                # A look-alike of a protected domain is the organisation's correspondent only
                # by an admin's rule: the catch-all of army.ml answers every slip released
                # to it. A sender who exchanged mail with it has it as its own (sender.py).
                learned = False
            else:
                # A slip of a correspondent, likely or possible: deliveries teach nothing,
                # and what one sender heard from it is that sender's (a look-alike of a
                # partner answers whoever wrote to it); several of ours make it the
                # organisation's.
                learned = (
                    proven
                    and self._relationships.vouching(domain.unicode)
                    >= self._learning.proven_senders
                )
                if not learned and learned_before:
                    lighter = self._lighter_blocking(verdict, (-weight, domain.ascii), now)
                    if lighter - taken_back:
                        blocked.append(domain)
                        blocking |= lighter - taken_back
            if learned:
                self._index.add(domain)
                taught.append(domain)
                if verdict.reason == reasons.ALLOWED_RULE:
                    judge.ruled.add(domain)
                if not proven:
                    self._from_deliveries.add(domain)
        judge.forget_verdicts()
        if taught and learned_before:
            self._take_back_outweighed(taught, now)
        if blocking:
            # Read at once, each blocked domain came first and kept the lighter one out.
            for outweighed in blocking:
                self._unlearn(outweighed)
            judge.forget_verdicts()
            self._reconsider([*blocked, *blocking], taken_back=taken_back | blocking)

    def _lighter_blocking(
        self, verdict: DomainVerdict, rank: tuple[float, str], now: float
    ) -> set[Domain]:
        """The correspondents learned from deliveries alone that make ``verdict``'s domain
        a slip of theirs, though it ranks before them (``rank``: its weight, negated, and
        its name, as :meth:`_reconsider` orders). Read at once, as the next whole learning
        reads the store, that domain would have been weighed first, with none of them
        learned yet: ``acme-crop.com``, a saved slip that one sender delivered to five
        times, must not keep out ``acme-corp.com`` once it answers."""
        found = set()
        for meant in (verdict.suggestion, *verdict.alternatives):
            learned = parse_once(meant) if meant is not None else None
            if (
                learned is not None
                and learned in self._from_deliveries
                and rank < (-self._judge.weight_of(learned, now), learned.ascii)
            ):
                found.add(learned)
        return found

    def _take_back_outweighed(self, taught: list[Domain], now: float) -> None:
        """Weigh again the correspondents learned earlier from deliveries alone that a
        heavier one learned since (``taught``) may show to be its slips. Read at once, as at
        the next start, the heavier is learned first and the slip of it is not; in the
        mail's order the slip came first (``partnr.com`` delivered to before anyone wrote to
        ``partner.com``) and would stay a correspondent while the process runs. They are
        looked for as the next start would find them: as the index's candidates."""
        judge = self._judge
        outweighed = set()
        now_learned = set(taught)
        for meant in taught:
            prior = judge.log_prior(meant)
            heavier = judge.weight_of(meant, now)
            for typed in self._index.candidates(meant, judge.max_edits):
                if (
                    typed in self._from_deliveries
                    and typed not in now_learned
                    and judge.weight_of(typed, now) < heavier
                    and explain(
                        typed, meant, budget=prior - novelty_nats(typed.name) - LOG_ODDS_FLOOR
                    )
                ):
                    outweighed.add(typed)
        if not outweighed:
            return
        for domain in outweighed:
            self._unlearn(domain)
        # Learned again if still no slip: only lighter ones can be taken back in turn.
        self._reconsider(sorted(outweighed, key=lambda domain: domain.ascii))

    def _unlearn(self, domain: Domain) -> None:
        """Take a learned correspondent out of the index (the caller forgets the verdicts)."""
        self._index.discard(domain)
        self._from_deliveries.discard(domain)

    def _forget_saved_slips(self, real: Domain) -> bool:
        """Take back the correspondents learned from deliveries alone that ``real`` now shows
        to be a saved slip: it looks like a slip of one, and answered (or had mail released
        to it by) that one's only sender, whom the learned one never answered. Learned in
        the mail's order, the slip sent before the real address was written to became the
        correspondent; read at once, neither would have (:meth:`_own_twin`). Returns
        whether any was taken back (the caller forgets the verdicts)."""
        if not self._from_deliveries:
            return False
        judge = self._judge
        verdict = judge.verdict(real.ascii)
        if verdict.reason == reasons.ALLOWED_RULE:  # the rule lets mail go; is it a slip?
            verdict = judge.fresh_verdict(real.ascii, ruled=False)
        if verdict.action is Action.ALLOW:
            return False
        forgot = False
        for meant in (verdict.suggestion, *verdict.alternatives):
            learned = parse_once(meant) if meant is not None else None
            if learned is None or learned not in self._from_deliveries:
                continue
            tie = self._relationships.tie(ORGANISATION, learned.unicode)
            if tie is not None and not tie.outbound_only:
                self._from_deliveries.discard(learned)  # it answered: real in its own right
                continue
            sender = self._relationships.sole_sender(learned.unicode)
            answered = self._relationships.tie(sender, real.unicode) if sender else None
            if answered is not None and not answered.outbound_only:
                self._unlearn(learned)
                forgot = True
        return forgot

    def _proven(self, tie: Tie) -> bool:
        """Mail received from the domain, or releases to it: enough to prove it real."""
        proven_after = self._learning.proven_after
        return tie.received >= proven_after or tie.released >= proven_after

    def _delivered(self, tie: Tie, now: float) -> bool:
        """Deliveries to the domain, faded: enough to make a correspondent of no slip."""
        faded = tie.sent * tie.fade(now, self._relationships.half_life)
        return faded >= self._learning.correspondent_mails

    def _own_twin(self, domain: Domain) -> tuple[str, str] | None:
        """The one sender of ours who writes to ``domain``, and the near-twin of it that the
        sender writes to too: one of the two is that sender's saved slip (``sandre.mo``
        beside ``sandre.ml``, neither answering), and deliveries cannot tell which."""
        sender = self._relationships.sole_sender(domain.unicode)
        if sender is None:
            return None
        address, _ = self._relationships.of_sender(sender)
        budget = LOG_PRIOR_KNOWN + SENDER_ADDRESS_NATS - LOG_ODDS_FLOOR
        for name, _ in own_near(domain, address):
            if (
                name != domain.unicode
                and not numbered_siblings(domain.unicode, name)
                and explain(domain, parse_once(name), budget=budget) is not None
            ):
                return sender, name
        return None
