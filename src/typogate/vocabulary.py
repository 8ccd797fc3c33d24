"""typogate's closed sets of words, one enum each, shared by every part.

The values are what the configuration, the store, the API and the logs write; they are
stable (docs/reasons.md, docs/configuration.md).
"""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    """What the mail flow should do with a recipient, mildest first."""

    ALLOW = "allow"
    WARN = "warn"
    HOLD = "hold"
    REJECT = "reject"


_SEVERITY = {action: rank for rank, action in enumerate(Action)}


def severity(action: Action) -> int:
    """How strict an action is: 0 for allow, up to 3 for reject."""
    return _SEVERITY[action]


class Mode(StrEnum):
    """Whether adapters carry verdicts out (enforce) or only decide and record (audit)."""

    ENFORCE = "enforce"
    AUDIT = "audit"


class Unreadable(StrEnum):
    """What the adapters answer for a recipient address typogate cannot read: never a
    pass (``gateway.unreadable_address``)."""

    DEFER = "defer"  # 4xx: the client keeps the message and retries; an admin can look
    REJECT = "reject"  # 5xx: the sender gets it back at once


class Profile(StrEnum):
    """The built-in domain lists (src/typogate/policy/profiles/)."""

    US_GOV = "us-gov"
    PROVIDERS = "providers"
    NONE = "none"


class Adapter(StrEnum):
    """Where a verdict was made: the part of the mail flow (or tool) that asked."""

    POLICY = "policy"
    MILTER = "milter"
    PROXY = "proxy"
    CLI = "cli"
    WEB = "web"


class HoldSource(StrEnum):
    """Where a held message waits: Postfix's hold queue, by a policy HOLD or a milter
    quarantine."""

    POSTFIX_HOLD = "postfix-hold"
    MILTER_QUARANTINE = "milter-quarantine"


class HoldState(StrEnum):
    """Where a held message stands: still held, released, deleted, or gone from Postfix's
    queue by other means (delivered, expired, deleted by hand)."""

    HELD = "held"
    RELEASED = "released"
    DELETED = "deleted"
    GONE = "gone"


class SenderSaid(StrEnum):
    """What a sender said with a link of its notice: release my held message, or confirm
    the recipients a warning questioned."""

    RELEASE = "release"
    CONFIRM = "confirm"


class HoldAction(StrEnum):
    """What a person did to a held message (the audit trail)."""

    RELEASE = "release"
    DELETE = "delete"


class Role(StrEnum):
    """Who may do what in the web interface: viewer reads everything; admin also releases,
    deletes and edits rules."""

    VIEWER = "viewer"
    ADMIN = "admin"


class AuditFormat(StrEnum):
    """The kinds of mail history an audit reads."""

    POSTFIX = "postfix"
    EXCHANGE = "exchange"
    MBOX = "mbox"
    MAILDIR = "maildir"
    EML = "eml"
    CSV = "csv"


class Engine(StrEnum):
    """Where batch work (an audit, a monitor run) runs: this machine's cores, or a Dask
    cluster."""

    LOCAL = "local"
    DASK = "dask"


class Evidence(StrEnum):
    """What shows that a domain is really written to, and not a slip: mail delivered to it
    (weak: years of mail to army.ml were slips), mail received from it (a real correspondent
    writes back), a sender's own release of a message held for it. An admin's allow rule is
    the fourth kind, kept as a rule rather than counted: while it stands, deliveries to the
    domain teach, and what they taught goes when the rule does."""

    SENT = "sent"
    RECEIVED = "received"
    RELEASED = "released"


class Risk(StrEnum):
    """What a slip can cost: a leak to a domain a stranger can register and receive at, or a
    misdelivery inside a registry nobody else can register in (it can only bounce)."""

    LEAK = "leak"
    MISDELIVERY = "misdelivery"


class SinkChoice(StrEnum):
    """What the operator chose for a served look-alike domain."""

    REFUSE = "refuse"  # MX to the sink: refused at RCPT with the address the sender meant
    FORWARD = "forward"  # MX to the sink: a real registrant's mail is passed on to its MX
    NULL = "null"  # a null MX (RFC 7505): senders fail at once, nothing reaches the sink


class MailState(StrEnum):
    """What DNS says about mail to a domain."""

    NXDOMAIN = "nxdomain"
    NO_MAIL = "no_mail"
    NULL_MX = "null_mx"
    MX = "mx"
    A_ONLY = "a_only"
    UNRESOLVED = "unresolved"

    @property
    def accepts_mail(self) -> bool:
        """True when an MTA would deliver mail for the domain somewhere."""
        return self in (MailState.MX, MailState.A_ONLY)


class Change(StrEnum):
    """How a look-alike differs from its last observation by the monitor (the watch)."""

    NEW = "new"
    CHANGED = "changed"
    SAME = "same"
    GONE = "gone"


class Probe(StrEnum):
    """What the monitor's SMTP probe found at a look-alike's mail server, asked about a
    made-up recipient."""

    ACCEPTS_ALL = "accepts_all"
    REFUSES_UNKNOWN = "refuses_unknown"
    UNREACHABLE = "unreachable"
    # Every address of its mail hosts is on no public network: not probed.
    NOT_PUBLIC = "not_public"
    # Every address of its mail hosts is on no public network or in one of the
    # organisation's own, at least one in its own: not probed.
    OWN_NETWORK = "own_network"

    @property
    def in_words(self) -> str:
        """What the answer means, as the dashboard and the alert mail say it."""
        return _PROBE_WORDS[self]

    @property
    def answered(self) -> bool:
        """True when a server said whether it takes a recipient nobody has: a change
        between two such answers is news, a server that did not answer is not."""
        return self in (Probe.ACCEPTS_ALL, Probe.REFUSES_UNKNOWN)


# Read for every look-alike a monitor page shows: built once, not at each reading.
_PROBE_WORDS = {
    Probe.ACCEPTS_ALL: "takes any recipient",
    Probe.REFUSES_UNKNOWN: "refuses unknown recipients",
    Probe.UNREACHABLE: "no server answered the probe",
    Probe.NOT_PUBLIC: "not probed: not a public address",
    Probe.OWN_NETWORK: "not probed: your network",
}
