"""The store's tables (SQLAlchemy 2). Schema changes go through Alembic (store/migrations)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from typogate.vocabulary import HoldState


class Base(DeclarativeBase):
    pass


class EventRow(Base):
    """One verdict as it happened in the mail flow."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # no index: listed by id
    recipient: Mapped[str] = mapped_column(String(320))
    domain: Mapped[str] = mapped_column(String(255), index=True)
    action: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(String(64))
    adapter: Mapped[str] = mapped_column(String(16))
    mode: Mapped[str] = mapped_column(String(16))
    sender: Mapped[str | None] = mapped_column(String(320))
    sasl_username: Mapped[str | None] = mapped_column(String(320))
    suggestion: Mapped[str | None] = mapped_column(String(255))
    score: Mapped[float] = mapped_column(Float)
    rule: Mapped[str] = mapped_column(String(128))
    queue_id: Mapped[str | None] = mapped_column(String(64))
    client_address: Mapped[str | None] = mapped_column(String(64))


class HoldRow(Base):
    """A held message: in Postfix's hold queue or typogate's quarantine."""

    __tablename__ = "holds"

    hold_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    source: Mapped[str] = mapped_column(String(32))
    sender: Mapped[str | None] = mapped_column(Text)  # whole: Postfix takes longer ones than 320
    recipients: Mapped[str] = mapped_column(Text)  # JSON list
    reasons: Mapped[str] = mapped_column(Text)  # JSON list
    suggestions: Mapped[str] = mapped_column(Text)  # JSON list
    queue_id: Mapped[str | None] = mapped_column(String(64), index=True)
    message_path: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default=HoldState.HELD.value, index=True)
    # What the sender's page shows of the message: its Subject and Date headers and every
    # envelope recipient (``recipients`` are the ones that held it). None: not read yet.
    subject: Mapped[str | None] = mapped_column(Text)
    written: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    all_recipients: Mapped[str | None] = mapped_column(Text)  # JSON list


class HoldIntentRow(Base):
    """An action on a held message that was decided but not yet confirmed in Postfix: written
    before ``postsuper`` runs, removed with the hold's new state (a crash in between leaves
    it here, and it is finished on the next start)."""

    __tablename__ = "hold_intents"

    hold_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # one at a time
    action: Mapped[str] = mapped_column(String(16))
    queue_id: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(320))
    why: Mapped[str] = mapped_column(Text)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    owner: Mapped[str] = mapped_column(String(320))  # host:pid:thread carrying it out


class CorrespondentRow(Base):
    """Learned history: how a party of the organisation and an outside domain know each other.

    ``sender`` is our side: an address, a domain, or ``*`` for the whole organisation.
    ``count`` is the deliveries to ``recipient_domain``; ``received`` the messages received
    from it; ``released`` the held messages to it that a sender released.
    """

    __tablename__ = "correspondents"
    __table_args__ = (
        UniqueConstraint("sender", "recipient_domain"),
        Index("ix_correspondents_recipient", "recipient_domain"),
        Index("ix_correspondents_last_seen", "last_seen"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sender: Mapped[str] = mapped_column(String(320))
    recipient_domain: Mapped[str] = mapped_column(String(255))
    count: Mapped[int] = mapped_column(Integer, default=0)
    received: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    released: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HoldActionRow(Base):
    """The audit trail: who released or deleted which hold, when, why, and what happened."""

    __tablename__ = "hold_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hold_id: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(320))
    why: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(Text)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SpentLinkRow(Base):
    """A sender's link that was used (each works once): a release link, or a warning's
    confirm link (``hold_id`` empty: it names no hold). With its sender and the recipients
    it was for, it is the record of what the sender said (links used before revision 0010
    to confirm have neither)."""

    __tablename__ = "spent_links"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    hold_id: Mapped[str] = mapped_column(String(64))
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sender: Mapped[str] = mapped_column(Text, default="", server_default="")
    recipients: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")  # JSON


class IncidentRow(Base):
    """Verdicts per day, kept by the writer as it records events: what the dashboard charts.

    Alerts (warn, hold, reject) are counted per domain, suggestion and sender; allowed
    deliveries only per day (``domain`` and ``sender`` are ``*``), so the table stays small
    and the dashboard never scans the events.
    """

    __tablename__ = "incidents"
    __table_args__ = (UniqueConstraint("day", "action", "domain", "suggestion", "sender"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    day: Mapped[str] = mapped_column(String(10), index=True)  # YYYY-MM-DD, UTC
    action: Mapped[str] = mapped_column(String(16))
    domain: Mapped[str] = mapped_column(String(255))
    suggestion: Mapped[str] = mapped_column(String(255))  # "" when none
    sender: Mapped[str] = mapped_column(String(320))  # "" when unknown
    count: Mapped[int] = mapped_column(Integer, default=0)


class AccountRow(Base):
    """A person who may use the web interface: viewer (reads) or admin (also acts)."""

    __tablename__ = "accounts"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(256))  # argon2id, with its parameters
    role: Mapped[str] = mapped_column(String(16))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WebSessionRow(Base):
    """A signed-in browser. Only a hash of the cookie is kept: a stolen database
    cannot be replayed as sessions."""

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class RuleRow(Base):
    """A blanket rule written in the web interface (the configuration's own rules stay
    in the TOML file); applied after the configured ones."""

    __tablename__ = "rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    suffix: Mapped[str | None] = mapped_column(String(255))
    domain: Mapped[str | None] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(16))
    exceptions: Mapped[str] = mapped_column(Text)  # JSON list
    message: Mapped[str | None] = mapped_column(Text)
    senders: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")  # JSON list
    author: Mapped[str] = mapped_column(String(64))
    updated: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SecretRow(Base):
    """Secrets typogate made for itself (release-link key when the config sets none)."""

    __tablename__ = "secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))


class LearnedSetRow(Base):
    """What the last start learned at once from every relationship (JSON), kept so that a
    restart on the same code, configuration, lists and rules takes it instead of weighing
    every correspondent again (policy/kept.py). One row: the newest start's."""

    __tablename__ = "learned_sets"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    as_of: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    learned: Mapped[str] = mapped_column(Text)


class LearnedLogRow(Base):
    """How far ``typogate learn`` read one log, so that a log learned again (the same
    files next week, or after rotation) counts only what it did not read before. A log is
    named by the digest of its first line, which renaming and compressing it keep."""

    __tablename__ = "learned_logs"

    log: Mapped[str] = mapped_column(String(64), primary_key=True)
    learned: Mapped[int] = mapped_column(BigInteger)  # bytes of its text; -1: to its end
    path: Mapped[str] = mapped_column(Text)  # where it was last read, for people
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LearnRefusalRow(Base):
    """What the latest ``typogate learn`` refused to learn, a row per domain and sender who
    wrote there: the list of the admin's first review (the dashboard's /pairs)."""

    __tablename__ = "learn_refusals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    domain: Mapped[str] = mapped_column(String(255))
    sender: Mapped[str] = mapped_column(Text)
    deliveries: Mapped[int] = mapped_column(Integer)
    suggestion: Mapped[str | None] = mapped_column(String(255))
    why: Mapped[str] = mapped_column(Text)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MonitorRunRow(Base):
    """One run of the monitor: a snapshot of the look-alikes of the protected domains."""

    __tablename__ = "monitor_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    started: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    protected: Mapped[int] = mapped_column(Integer)  # protected domains
    asked: Mapped[int] = mapped_column(Integer)  # look-alikes asked in DNS
    changes: Mapped[int] = mapped_column(Integer)  # new, changed and gone look-alikes


class LookAlikeRow(Base):
    """A look-alike as one monitor run saw it. Only look-alikes that exist are kept, and
    the ones that went (state ``nxdomain``, change ``gone``): the latest row of a domain is
    its latest known state."""

    __tablename__ = "look_alikes"
    __table_args__ = (
        UniqueConstraint("run_id", "domain"),
        Index("ix_look_alikes_domain_run", "domain", "run_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(Integer, index=True)
    domain: Mapped[str] = mapped_column(String(255))  # A-label form, as DNS is asked
    display: Mapped[str] = mapped_column(String(255))  # Unicode form, as people read it
    intended: Mapped[str] = mapped_column(String(255))
    probability: Mapped[float] = mapped_column(Float)
    rank: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    mx: Mapped[str] = mapped_column(Text)  # JSON list of hosts, by preference
    spf: Mapped[bool] = mapped_column(Boolean)
    dmarc: Mapped[bool] = mapped_column(Boolean)
    probe: Mapped[str | None] = mapped_column(String(16))  # None: not probed
    change: Mapped[str] = mapped_column(String(16))


class SinkRecordRow(Base):
    """One recipient the sink answered: metadata only, never content, and a keyed hash of
    the local part instead of the address (unless ``sink.keep_addresses``)."""

    __tablename__ = "sink_records"
    __table_args__ = (Index("ix_sink_records_day_intended", "day", "intended"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    day: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD, UTC: what reports group by
    client_address: Mapped[str] = mapped_column(String(64))
    client_range: Mapped[str] = mapped_column(String(64))  # /24 (IPv4) or /48 (IPv6)
    helo: Mapped[str] = mapped_column(String(255))
    sender_domain: Mapped[str] = mapped_column(String(255))  # "" for a bounce (MAIL FROM:<>)
    local_hash: Mapped[str] = mapped_column(String(64))  # HMAC-SHA256 of the local part
    recipient: Mapped[str | None] = mapped_column(String(320))  # only with keep_addresses
    lookalike: Mapped[str] = mapped_column(String(255))
    intended: Mapped[str] = mapped_column(String(255))  # "" when no domain was meant
    outcome: Mapped[str] = mapped_column(String(16))
    reply: Mapped[str] = mapped_column(Text)


class SinkReportRow(Base):
    """A daily report to an intended organisation: sent, or why not. One per intended
    domain and day, so that several sink instances never send the same report twice."""

    __tablename__ = "sink_reports"
    __table_args__ = (UniqueConstraint("intended", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    intended: Mapped[str] = mapped_column(String(255))
    day: Mapped[str] = mapped_column(String(10))
    contact: Mapped[str] = mapped_column(String(320))
    messages: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))  # sending, sent, failed
    detail: Mapped[str] = mapped_column(Text)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
