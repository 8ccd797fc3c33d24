"""A verdict for one sender's mail: the domain's verdict, weighed with the sender's own
relationships (Mimecast's misaddressed-mail anchor: a first send to a near-twin of one of
the sender's own correspondents is the strongest signal of a slip)."""

from __future__ import annotations

import time

from typogate.domains import (
    Domain,
    InvalidAddress,
    explain,
    merged,
    parse_address,
    parse_domain,
    within_edits,
)
from typogate.policy import verdict as reasons
from typogate.policy.judge import (
    LOG_ODDS_FLOOR,
    LOG_PRIOR_KNOWN,
    RULED,
    SENDER_ADDRESS_NATS,
    DomainJudge,
    and_parents,
    best_first,
    candidate,
    history_nats,
    novelty_nats,
    numbered_siblings,
)
from typogate.policy.relationships import ORGANISATION, Tie
from typogate.policy.verdict import Candidate, DomainVerdict
from typogate.vocabulary import Action, Risk, severity

# For a sender who never wrote to a learned correspondent, its history counts in senders,
# not in mail: each of ours who writes to it adds at most this much weight. How often others
# write there says little of what this sender means (a colleague's daily partner is no
# likelier to be this sender's intended domain than the next near-twin it has to choose from).
WEIGHT_PER_SENDER = 3.0
# A sender's own relationship with an intended domain raises its prior for that sender's
# mail (SENDER_ADDRESS_NATS for the address's own; an address's own history counts more
# than its domain's).
SENDER_DOMAIN_NATS = 1.5
# A sender's own correspondents unknown to the organisation are looked for this many edits
# away from a domain it types (the index's own reach, for names it does not hold).
OWN_EDITS = 2
# ... for a sender with at most this many correspondents: one who writes to more is a list
# server, not a person typing, and the look-up costs a request time in proportion.
OWN_TIES_MAX = 2000
# A look-alike of a protected domain is real, for a sender, when it answered at least this
# share of the mail that sender sent to it.
REPLY_SHARE = 0.1
# Of two near-twins a sender writes to, neither answering, the one written to this many
# times as often is what it meant: a saved slip is used in place of the real address, so
# its count trails the real one's. About as often, either may be the slip.
OUTWRITTEN = 3.0

# Verdicts on names the organisation does not know, or knows only the parent of: a
# sender's own correspondent near them may be what it meant (gis2.sam.usace.army.mil).
_OWN_MAY_BE_NEAR = frozenset({reasons.ALLOWED_UNLIKELY, reasons.ALLOWED_SUBDOMAIN})


def for_sender(
    judge: DomainJudge, judgement: DomainVerdict, sender: str | None, *, vouched: bool
) -> DomainVerdict:
    """The domain's ``judgement`` for ``sender``'s mail: its own domain is allowed and its
    own relationships count when ``vouched`` for; a sender nobody vouched for can only make
    the verdict stricter."""
    if not sender:
        return judgement
    if vouched and judgement.action is not Action.ALLOW and _same_domain(sender, judgement.domain):
        return DomainVerdict(
            judgement.domain,
            Action.ALLOW,
            reasons.ALLOWED_OWN_DOMAIN,
            f"{judgement.domain} is the sender's own domain.",
            rule="own-domain",
        )
    if vouched:  # an admin's allow for this sender, before its own relationships weigh in
        ruled = judge.allowed_for_sender(sender, judgement)
        if ruled is not None:
            return ruled
    if (
        judgement.candidates
        or judgement.action is not Action.ALLOW
        or judgement.reason in _OWN_MAY_BE_NEAR
    ):
        own = _with_own_relationships(judge, judgement, sender)
        if vouched or severity(own.action) >= severity(judgement.action):
            return own
    return judgement


def lifted_by_release(judge: DomainJudge, judgement: DomainVerdict) -> bool:
    """Whether a sender's own release of mail to the judged domain (a held message, or a
    warning it confirmed) lifts this alert from its later mail there: not an admin's
    rule, nor a look-alike of a protected domain that anyone can register where typogate
    stops the mail (its catch-all answers every slip, and a release there is a habit, not
    proof). A slip that stays under a protected domain can only bounce, and a warned
    message goes anyway: there the release is the sender's word, and lifting the alert
    opens nothing that was closed."""
    if judgement.rule.startswith(RULED):
        return False
    return not _registrable_look_alike(judge, judgement) or judgement.action is Action.WARN


def _registrable_look_alike(judge: DomainJudge, judgement: DomainVerdict) -> bool:
    """Whether the judged domain is a look-alike of a protected domain that anyone can
    register: a stranger may run it, and its catch-all answer every slip."""
    return judge.of_protected(judgement) and judgement.risk is not Risk.MISDELIVERY


def own_near(typed: Domain, address: dict[str, Tie]) -> list[tuple[str, int]]:
    """A sender's own correspondents at most ``OWN_EDITS`` from ``typed``, with their edits,
    and those ``typed`` spells whole as its name (``ebmpecsddisamil.com`` for
    ``ebmpe.csd.disa.mil``: one slip, which no index looks for in a host that is the
    sender's alone); none for a sender with more than ``OWN_TIES_MAX`` (a list server: the
    look-up would cost in proportion)."""
    if len(address) > OWN_TIES_MAX:
        return []
    names = list(address)
    near = [
        (names[position], edits)
        for position, edits in within_edits(typed.unicode, names, OWN_EDITS)
    ]
    # All names flattened in one string (no name holds a line break) and searched at once:
    # this is on the path of every first send, and a twin of this shape is rare.
    whole = merged(typed.name)
    if f"\n{whole}\n" in merged("\n" + "\n".join(names) + "\n"):
        near += [(n, 1) for n in names if merged(n) == whole and n != typed.unicode]
    return near


def _with_own_relationships(
    judge: DomainJudge, judgement: DomainVerdict, sender: str
) -> DomainVerdict:
    """The judgement for ``sender``'s mail, with its own relationships: a domain it has
    written to before (and that is no likely slip) is allowed; a first send to a
    near-twin of one of its own correspondents weighs more, and so does a send to one
    that never answered it, beside a near-twin that did; a near-twin of a domain only
    others write to weighs less (by how many of them do, not how much)."""
    relationships = judge.relationships
    address, domain = relationships.of_sender(sender)
    if relationships.own_domains() < 2:
        domain = {}  # the sender's domain is the organisation: its history is counted
    if not address and not domain:
        return judgement
    typed = judgement.domain
    own = address.get(typed)
    if (
        own is not None
        and judgement.action is not Action.ALLOW
        and not judgement.rule.startswith(RULED)  # an admin's block is never lifted
    ):
        # The sender's own deliveries never lift an alert (a saved slip is delivered
        # again and again); mail from the domain or a release does, but from a look-alike
        # of a protected domain that anyone can register only a real exchange (its
        # catch-all answers every slip) or, where it was only warned about, a release.
        if own.released and lifted_by_release(judge, judgement):
            answered = True
        elif _registrable_look_alike(judge, judgement):
            answered = _exchanged(own)
        else:
            answered = bool(own.received)
        if answered:
            return DomainVerdict(
                typed,
                Action.ALLOW,
                reasons.ALLOWED_RELATIONSHIP,
                f"{sender} has written to {typed} before.",
                rule="relationship",
            )
    # Written to before, never answered: deliveries do not say it was meant (a saved
    # slip, or one that bounced, which no policy request shows), so a near-twin of it
    # that does answer this sender, or that it writes to far more, is still what it may
    # have meant.
    unanswered = own if own is not None and own.outbound_only else None
    candidates = judgement.candidates
    if judgement.reason in _OWN_MAY_BE_NEAR and (own is None or unanswered):
        candidates += _own_candidates(judge, typed, address, over=unanswered)
    if not candidates or judgement.rule.startswith(RULED):
        return judgement
    lifted = []
    lifts = {}
    relationship = judge.config.learning.relationship_mails
    for hypothesis in candidates:
        lift = _lift(hypothesis.domain, address, domain, relationship)
        if (
            lift < SENDER_ADDRESS_NATS  # a sender we know, who never wrote there
            and address
            and not judge.under_protected(hypothesis.domain)
        ):
            if numbered_siblings(typed, hypothesis.domain):
                continue  # g1xmail.top for one who never wrote to g2xmail.top: a series
            lift += _unknown_to_sender(judge, hypothesis.domain)
        if own is not None and not (unanswered and _meant_over(address, hypothesis.domain, own)):
            lift = min(lift, 0.0)  # no first send: only what it never wrote to weighs less
        lifts[hypothesis.domain] = lift
        lifted.append(hypothesis._replace(log_odds=hypothesis.log_odds + lift))
    if lifted == list(judgement.candidates):
        return judgement
    likely = [c for c in best_first(lifted) if c.log_odds >= LOG_ODDS_FLOOR]
    because = ""
    if likely and lifts[likely[0].domain] > 0:
        meant = likely[0].domain
        if own is None:
            because = f" {sender} writes to {meant}, never before to {typed}."
        elif _answered(address, meant):
            because = f" {sender} has had answers from {meant}, never from {typed}."
        elif (written := _outwriting(address, meant, own)) is not None:
            because = (
                f" {sender} has written to {written} {address[written].sent} times, to"
                f" {typed} {own.sent}, and had answers from neither."
            )
    return judge.decide(parse_domain(typed), likely, candidates, because)


def _own_candidates(
    judge: DomainJudge, typed: str, address: dict[str, Tie], *, over: Tie | None = None
) -> tuple[Candidate, ...]:
    """The sender's own correspondents near ``typed``, as candidates for this sender's
    slips alone: those it has a relationship with (two deliveries,
    ``learning.relationship_mails``, or mail received or released; ``over`` the
    sender's own tie to ``typed``, which never answered: mail received or released, or
    ``OUTWRITTEN`` times its deliveries). One the organisation
    does not know yet is real enough for the one who writes there (``LOG_PRIOR_KNOWN``);
    one it learned is read here for the two slips the index looks for only in
    protected names, with the weight of its history."""
    domain = parse_domain(typed)
    near = own_near(domain, address)
    if not near:
        return ()
    novelty = novelty_nats(domain.name)
    found = []
    relationship = judge.config.learning.relationship_mails
    for name, edits in near:
        tie = address[name]
        if tie.outbound_only and (
            tie.sent < relationship or (over is not None and not _outwrites(tie, over))
        ):
            continue  # one delivery may have been a slip of its own (leviaecrman.store)
        meant = parse_domain(name)
        known = meant in judge.index
        if known and (edits < 2 or meant.ascii in judge.protected):
            continue  # the index found it already: one slip, or two of a protected name
        if judge.likely(judge.verdict(meant.ascii)):
            continue  # the sender's own earlier slip is no intended domain
        if numbered_siblings(typed, name):
            continue  # afms2 beside afms: another host of a series, as for listed ones
        prior = (judge.log_prior(meant) if known else LOG_PRIOR_KNOWN) - novelty
        explanation = explain(domain, meant, budget=prior + SENDER_ADDRESS_NATS - LOG_ODDS_FLOOR)
        if explanation is not None:
            found.append(candidate(meant.unicode, prior - explanation.cost, explanation))
    return tuple(found)


def _unknown_to_sender(judge: DomainJudge, suggestion: str) -> float:
    """The nats (zero or less) a learned correspondent's prior loses for a sender who
    never wrote to it: its history counted in senders (at most ``WEIGHT_PER_SENDER``
    each), not in mail. For a suggestion that is no protected domain."""
    relationships = judge.relationships
    for meant in and_parents(suggestion):
        tie = relationships.tie(ORGANISATION, meant)
        if tie is not None:
            weight = judge.weight(tie, time.time())
            by_senders = min(weight, WEIGHT_PER_SENDER * relationships.senders(meant))
            return history_nats(by_senders) - history_nats(weight)
    return 0.0


def _same_domain(sender: str, domain: str) -> bool:
    try:
        return parse_address(sender).domain.unicode == domain
    except InvalidAddress:
        return False


def _exchanged(tie: Tie) -> bool:
    """Mail received from the domain, a fair share of what was sent there: a conversation,
    not a typo domain's operator warning now and then."""
    return tie.received > 0 and tie.received >= REPLY_SHARE * tie.sent


def _answered(address: dict[str, Tie], name: str) -> bool:
    """Whether the sender has had mail from ``name`` (or a domain it is under), or released
    mail to it."""
    return any(
        (tie := address.get(meant)) is not None and not tie.outbound_only
        for meant in and_parents(name)
    )


def _meant_over(address: dict[str, Tie], name: str, typed: Tie) -> bool:
    """Whether ``name`` (or a domain it is under) is likelier what the sender meant than a
    domain it wrote to before (``typed``, its tie, never answered): it answered the sender
    or had mail released to it, or it was written to ``OUTWRITTEN`` times as often."""
    return _answered(address, name) or _outwriting(address, name, typed) is not None


def _outwriting(address: dict[str, Tie], name: str, typed: Tie) -> str | None:
    """``name``, or the domain it is under, that the sender wrote to ``OUTWRITTEN`` times as
    often as the domain of ``typed`` (its tie), if any."""
    for meant in and_parents(name):
        tie = address.get(meant)
        if tie is not None and _outwrites(tie, typed):
            return meant
    return None


def _outwrites(tie: Tie, typed: Tie) -> bool:
    """Whether the sender wrote ``OUTWRITTEN`` times as often to the domain of ``tie`` as to
    that of ``typed``."""
    return tie.sent >= OUTWRITTEN * typed.sent


def _lift(
    suggestion: str, address: dict[str, Tie], domain: dict[str, Tie], relationship: int
) -> float:
    """How much a sender's own relationship with ``suggestion`` (or a domain it is under)
    raises the odds that the sender meant it: ``relationship`` deliveries make one (two, as
    Mimecast counts them), and so does any mail received from it or released to it."""

    def related(tie: Tie | None) -> bool:
        return tie is not None and (tie.sent >= relationship or tie.received or tie.released) > 0

    for meant in and_parents(suggestion):
        if related(address.get(meant)):
            return SENDER_ADDRESS_NATS
        if related(domain.get(meant)):
            return SENDER_DOMAIN_NATS
    return 0.0
