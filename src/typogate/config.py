"""typogate's configuration: one TOML file, a section per part, validated, with errors that
name the key.

See docs/configuration.md for every key. Everything has a default: no file at all means
the built-in ``us-gov`` profile, enforce mode, reject likely typos and warn on possible ones.
Which domains the lists hold is read by ``typogate.policy.lists``; this module only says
where they are.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from typogate.errors import ConfigError
from typogate.vocabulary import Action, Mode, Profile, SinkChoice, Unreadable

__all__ = [
    "Config",
    "ConfigError",
    "Rule",
    "config_file",
    "host_and_port",
    "rule_domain",
    "rule_suffix",
]

# Where every command looks for its configuration when neither ``--config`` nor the
# environment variable names one (docs/configuration.md).
SYSTEM_FILE = Path("/etc/typogate/typogate.toml")
ENVIRONMENT = "TYPOGATE_CONFIG"
# Debian's name for the host in mail (what Postfix's myorigin usually reads).
MAILNAME_FILE = Path("/etc/mailname")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Domains(_Section):
    """Which domains are real: protected ones (high prior) and known correspondents."""

    protected: list[str] = []
    protected_files: list[Path] = []
    known: list[str] = []
    known_files: list[Path] = []


class Model(_Section):
    """Where the probability that a domain is a mistake turns into an action."""

    reject_at: float = Field(0.9, ge=0.0, le=1.0)
    warn_at: float = Field(0.5, ge=0.0, le=1.0)
    # Registries nobody else can register in: a slip that lands there can only bounce
    # (a misdelivery), never reach a stranger (a leak). A subdomain of a protected domain,
    # and a suffix that is no real one (gmail.con), cannot leak either.
    closed_suffixes: list[str] = ["mil", "gov"]

    @model_validator(mode="after")
    def _ordered(self) -> Model:
        if self.warn_at > self.reject_at:
            raise ValueError("warn_at must not be above reject_at")
        return self


class Misdelivery(_Section):
    """Actions for slips that cannot leak (see ``model.closed_suffixes``); unset: as leaks."""

    typo: Action | None = None
    possible_typo: Action | None = None


class Actions(_Section):
    """The action for each outcome of the model, for leaks (and for misdeliveries, unless
    ``misdelivery`` says otherwise)."""

    typo: Action = Action.REJECT
    possible_typo: Action = Action.WARN
    misdelivery: Misdelivery = Misdelivery()


class Rule(_Section):
    """A blanket rule an admin writes: block or allow a whole suffix or domain.

    Exactly one of ``suffix`` (``ml``, ``co.uk``: on the Public Suffix List) or ``domain``
    (``partner.ml``, a registrable domain or one below it, which also covers its
    subdomains; under an unknown top-level label too, as the list's ``*`` rule has it).
    ``except`` lists domains under it that the rule leaves alone. ``senders`` (addresses or
    their domains) makes an allow rule theirs alone: their mail to what it covers is
    allowed, everyone else's is judged as before. Every check is made here,
    so the configuration file, the REST API and the rules page refuse the same rules in the
    same words; the values are kept normalised (lower case, Unicode).
    """

    suffix: str | None = None
    domain: str | None = None
    action: Action
    exceptions: list[str] = Field(default_factory=list, alias="except")
    message: str | None = None
    senders: list[str] = Field(default_factory=list)

    @field_validator("suffix")
    @classmethod
    def _public_suffix(cls, value: str | None) -> str | None:
        return None if value is None else rule_suffix(value)

    @field_validator("domain")
    @classmethod
    def _registrable(cls, value: str | None) -> str | None:
        return None if value is None else rule_domain(value)

    @field_validator("exceptions")
    @classmethod
    def _exception_domains(cls, value: list[str]) -> list[str]:
        return [rule_domain(text, "except") for text in value]

    @field_validator("message")
    @classmethod
    def _sentence(cls, value: str | None) -> str | None:
        return (value or "").strip() or None

    @field_validator("senders")
    @classmethod
    def _sender_parties(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(rule_sender(text) for text in value))

    @model_validator(mode="after")
    def _one_target(self) -> Rule:
        if (self.suffix is None) == (self.domain is None):
            raise ValueError("a rule names exactly one of 'suffix' or 'domain'")
        under = f".{self.suffix}" if self.suffix is not None else f".{self.domain}"
        for name in self.exceptions:
            if not f".{name}".endswith(under):
                raise ValueError(f"except: {name} is not under {under[1:]}: it would never apply")
        if self.senders and self.action is not Action.ALLOW:
            # A block for one sender would let a forged or unauthenticated one through it.
            raise ValueError(
                "senders: a rule for some senders only allows their mail; "
                "a block is for every sender (leave senders empty)"
            )
        return self

    @property
    def target(self) -> str:
        """``suffix:ml`` or ``domain:partner.ml``: how verdicts, logs and pages name this rule.
        A name with non-ASCII letters is written in its A-label form (``xn--rmy-5cd.mil``): in
        Unicode, a rule on a Cyrillic look-alike would read exactly like one on the original."""
        kind, name = ("suffix", self.suffix) if self.suffix is not None else ("domain", self.domain)
        assert name is not None
        if not name.isascii():
            from typogate.domains import parse_domain

            name = (
                parse_domain(f"x.{name}").ascii[2:]
                if kind == "suffix"
                else parse_domain(name).ascii
            )
        return f"{kind}:{name}"


def rule_problem(error: ValueError) -> str:
    """Why a rule was refused, in one line: the first problem, naming its field if it has one.

    The API, the rules page and ``typogate rules add`` all answer with it, in the same words.
    """
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        field = ".".join(map(str, first["loc"]))
        return f"{field}: {message}" if field else message
    return str(error)


def rule_suffix(text: str) -> str:
    """A rule's suffix, normalised (``.ML`` -> ``ml``); ValueError unless it is on the
    Public Suffix List (``gmial.com`` is a domain, ``com.`` a slip, ``xx-not-a-suffix``
    no suffix at all)."""
    from typogate.domains import InvalidAddress, parse_domain
    from typogate.domains.names import is_real_suffix

    raw = text.strip().lower()
    if raw.endswith("."):
        raise ValueError(f"{text!r} ends with a dot: write the suffix alone, as ml or co.uk")
    raw = raw.removeprefix(".")
    try:
        suffix = parse_domain(f"x.{raw}").unicode.partition(".")[2]
    except InvalidAddress as error:
        raise ValueError(f"{text!r} is not a suffix: {error.reason}") from None
    if not raw or not is_real_suffix(suffix):
        raise ValueError(
            f"{text!r} is not a public suffix (such as ml or co.uk); "
            "for one domain and its subdomains, write a domain rule"
        )
    return suffix


def rule_domain(text: str, what: str = "") -> str:
    """A rule's domain (or exception), normalised; ValueError unless it is a registrable
    domain or one below it (``partner.ml``, ``mail.partner.ml``, ``shop.example``; not a
    public suffix such as ``ml`` or ``co.uk``)."""
    from typogate.domains import InvalidAddress, parse_domain
    from typogate.domains.names import is_real_suffix

    label = f"{what}: " if what else ""
    if is_real_suffix(text.strip().lower().strip(".")):
        raise ValueError(
            f"{label}{text!r} is a public suffix, not a domain: "
            "for every domain under it, write a suffix rule"
        )
    try:
        return parse_domain(text).unicode
    except InvalidAddress as error:
        raise ValueError(f"{label}{text!r} is not a domain: {error.reason}") from None


def rule_sender(text: str) -> str:
    """A rule's sender, normalised (lower case): an address (``ann@example.org``) or a
    domain (``example.org``), which covers every address at it; ValueError for anything
    else."""
    from typogate.domains import InvalidAddress, parse_address, parse_domain

    raw = text.strip().lower()
    try:
        if "@" in raw:
            address = parse_address(raw)
            return f"{address.local}@{address.domain.unicode}"
        return parse_domain(raw).unicode
    except InvalidAddress as error:
        raise ValueError(f"{text!r} is not a sender's address or domain: {error.reason}") from None


class Learning(_Section):
    """How typogate learns who the organisation writes to (docs/configuration.md)."""

    # A relationship's weight halves for every this many days without mail.
    half_life_days: float = Field(180.0, gt=0)
    # Deliveries after which the organisation's outside domain is a known correspondent.
    correspondent_mails: int = Field(3, ge=1)
    # Deliveries from one sender (address) to a domain that make a relationship of its own.
    relationship_mails: int = Field(2, ge=1)
    # Messages received from a domain, or held messages to it that their senders released,
    # that prove it real for the whole organisation (a typo domain seldom writes back). For
    # one sender, a single release or message received is enough.
    proven_after: int = Field(2, ge=1)
    # Sender addresses that must have heard from a likely slip of a correspondent (or
    # released mail to it) before it is the organisation's: for one, it is that sender's.
    proven_senders: int = Field(2, ge=1)
    # How often a running gateway reads what other processes learned into the store.
    refresh_seconds: float = Field(10.0, gt=0)


class Gateway(_Section):
    """Where the mail-flow adapters listen, where notices go, where holds are recorded,
    and what the adapters know of the MTA around them."""

    policy_listen: str = "127.0.0.1:10040"
    milter_listen: str = "inet:10041@127.0.0.1"
    proxy_listen: str = "127.0.0.1:10025"
    next_hop: str = ""  # the SMTP proxy's next hop, host:port
    # Where typogate's notices to senders go: the local MTA by default, so a sender whose
    # recipient was removed or held is told without any set-up; "" = no notices.
    notice_relay: str = "127.0.0.1:25"
    notice_from: str = ""  # the notices' From; "" = postmaster@ this host's mail name
    # Also tell the sender when a recipient only looked like a possible mistake (a warn
    # verdict: the message was delivered, with an X-Typogate header nobody reads).
    warn_notices: bool = False
    journal: Path = Path("typogate-journal.jsonl")  # verdict events and held messages
    # The MTA's own domains (Postfix's mydestination, and [address] literals of its
    # interfaces): mail to them stays there, and the percent hack and bang path route on
    # from them. None = unknown: every host such an address may reach is judged.
    own_domains: list[str] | None = None
    # Clients whose envelope sender is believed without authentication: only such a
    # sender, or one that authenticated (SASL), has its own domain allowed.
    trusted_networks: list[IPvAnyNetwork] = []
    unreadable_address: Unreadable = Unreadable.DEFER

    @property
    def notice_sender(self) -> str:
        """The notices' From: ``notice_from``, else postmaster at this host's mail name."""
        return self.notice_from or f"postmaster@{mail_name()}"


class Release(_Section):
    """Hold and release: the Postfix instance holds live in, and the senders' release links."""

    postfix_config: str | None = None  # postsuper -c DIR; None = the default instance
    secret: str = ""  # signs release links (16+ characters); links are off without it
    base_url: str = "http://127.0.0.1:8025"
    link_hours: float = Field(72.0, gt=0)


class StoreSettings(_Section):
    """Where the store is and what it keeps."""

    # sqlite:///PATH or postgresql://USER@HOST/DB; ``--db`` overrides it. A relative SQLite
    # path is read from the configuration file's folder. Unset: the adapters record to
    # gateway.journal, and serve, web and the admin commands use ./typogate.db.
    url: str | None = None

    # Allowed verdicts are counted (per day, and as learned correspondents) but not kept
    # one row each: the organisation's recipients stay out of typogate's database, and
    # recording costs the gateway less. True keeps a row for every verdict.
    keep_allowed: bool = False


class Web(_Section):
    """The web interface: dashboard, REST API, metrics."""

    listen: str = "127.0.0.1:8025"
    # Cookies only over HTTPS. Browsers also send them to http://127.0.0.1 and
    # http://localhost (a secure context), so the default suits a loopback listener or a
    # TLS-terminating proxy in front; set false only for plain HTTP on another host.
    secure_cookies: bool = True
    session_hours: float = Field(12.0, gt=0)
    # Prometheus may scrape /metrics with "Authorization: Bearer <token>"; "" = login only.
    metrics_token: str = ""
    # Reverse proxies (addresses or networks) whose X-Forwarded-For names the client: the
    # sign-in throttle counts per client, and a header from anyone else is ignored.
    trusted_proxies: list[str] = []

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for text in value:
            try:
                ipaddress.ip_network(text, strict=False)
            except ValueError:
                raise ValueError(f"{text!r} is not an IP address or network") from None
        return value


class Served(_Section):
    """One look-alike domain (and its subdomains) or a whole suffix the sink answers for."""

    domain: str | None = None
    suffix: str | None = None
    choice: SinkChoice = SinkChoice.REFUSE
    forward_to: str = ""  # HOST:PORT of the registrant's own mail server (choice = forward)

    @model_validator(mode="after")
    def _one_target(self) -> Served:
        if (self.domain is None) == (self.suffix is None):
            raise ValueError("a served entry names exactly one of 'domain' or 'suffix'")
        if (self.choice is SinkChoice.FORWARD) != bool(self.forward_to):
            raise ValueError("'forward_to' is set exactly when choice = \"forward\"")
        return self

    @property
    def target(self) -> str:
        """``army.ml`` or ``.ml``: how the entry is named in messages and tables."""
        return self.domain if self.domain is not None else f".{self.suffix}"


class ReportContact(_Section):
    """An intended organisation's opt-in: its daily report goes to ``contact``."""

    intended: str  # the domain senders meant (army.mil); its subdomains are included
    contact: str  # the address the organisation registered for reports


class Sink(_Section):
    """The sink at look-alike domains (docs/sink.md): where it listens, what it serves,
    what it keeps and whom it reports to."""

    listen: str = "127.0.0.1:2525"
    # The name the look-alikes' MX records point at (a name with an address record).
    hostname: str = "sink.localhost"
    serve: list[Served] = []
    # Key of the keyed hash (HMAC-SHA256) kept instead of a recipient's local part; "" =
    # a random key made once and kept in the store (every instance on that store shares it).
    key: str = ""
    # Keep recipient addresses themselves: off by default, and documented as a choice.
    keep_addresses: bool = False
    retention_days: int = Field(90, ge=1)
    # Records are written in batches this often: the SMTP answer never waits for the store.
    batch_seconds: float = Field(1.0, gt=0, le=60)
    reports: list[ReportContact] = []
    report_from: str = "typo-reports@localhost"
    report_relay: str = ""  # HOST:PORT of the relay that delivers reports; "" = none sent
    report_hour: int = Field(1, ge=0, le=23)  # UTC hour after which yesterday's reports go


class Limits(_Section):
    """Bounds on what any client or input may cost (docs/operations.md, "What typogate
    promises under attack and failure")."""

    # Policy service: connections at once (the one idle the longest makes room for a new
    # one), and seconds to wait for a request, to read the rest of one, to hand an answer
    # over. Postfix waits smtpd_policy_service_timeout (100 s) for an answer.
    policy_connections: int = Field(512, ge=1)
    policy_idle_seconds: float = Field(300.0, gt=0)
    policy_read_seconds: float = Field(10.0, gt=0)
    policy_write_seconds: float = Field(10.0, gt=0)
    # Seconds a hold's record may take before the policy service answers 451 without it
    # (the milter: TEMPFAIL; the client retries): below the timeout docs/postfix.md gives
    # Postfix, 10 s, so that a store that stops answering never leaves Postfix to its
    # default_action.
    hold_record_seconds: float = Field(5.0, gt=0)
    # SMTP proxy: sessions at once (more get 421), a message's size (more gets 552, as
    # Postfix's message_size_limit), and seconds a session may be silent.
    proxy_connections: int = Field(50, ge=1)
    proxy_message_bytes: int = Field(10_240_000, ge=1024)
    proxy_idle_seconds: float = Field(300.0, gt=0)
    # The sink (on port 25 for anyone): sessions at once, and from one client address (an
    # IPv6 client is its /64); more get 421, as from Postfix's process and anvil limits.
    sink_connections: int = Field(500, ge=1)
    sink_connections_per_client: int = Field(20, ge=1)
    # Sink sessions mirrored to a registrant's server at once: each may hold a message of
    # up to 25 MB, twice, in memory (more are told 452 at RCPT, and come again).
    sink_forwarding_sessions: int = Field(16, ge=1)
    # Web interface (its port may be open to senders, and under serve it shares the
    # process with the policy service): connections at once (one more gets 503), seconds
    # a new connection has to send its first request (and a request its body), and the
    # bytes a request's body may hold (more gets 413).
    web_connections: int = Field(128, ge=1)
    web_request_seconds: float = Field(20.0, gt=0)
    web_body_bytes: int = Field(1024 * 1024, ge=1024)
    # Sink records an hour, in all and from one client range (/24, /48): past them the
    # answers go on, unrecorded, so no client fills the disk (a record is about 400 bytes).
    sink_records_per_hour: int = Field(20_000, ge=1)
    sink_records_per_client_hour: int = Field(1000, ge=1)
    # Relationships a running Guard keeps in memory (three per sender address and outside
    # domain): past this, no new ones until the next start (about 650 bytes each).
    learned_ties: int = Field(1_000_000, ge=1000)
    # The journal file (no --db): rotated past this size, with this many old files kept.
    journal_max_bytes: int = Field(100 * 1024 * 1024, ge=4096)
    journal_keep: int = Field(5, ge=1)
    # Log lines: at most this many of one kind a minute (then one line says how many were
    # left out), each at most log_line_chars long.
    log_lines_per_minute: int = Field(600, ge=1)
    log_line_chars: int = Field(1000, ge=200)


class Config(_Section):
    """The whole configuration. Build with :meth:`load` or directly in code."""

    mode: Mode = Mode.ENFORCE
    profile: Profile | None = None
    domains: Domains = Domains()
    model: Model = Model()
    actions: Actions = Actions()
    rules: list[Rule] = []
    gateway: Gateway = Gateway()
    release: Release = Release()
    store: StoreSettings = StoreSettings()
    web: Web = Web()
    learning: Learning = Learning()
    sink: Sink = Sink()
    limits: Limits = Limits()
    # Relative list files are read from here (the config file's folder).
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)
    # The file this configuration was read from (None: built-in defaults or code).
    _source: Path | None = PrivateAttr(None)

    @field_validator("profile", mode="before")
    @classmethod
    def _known_profile(cls, value: object) -> object:
        if value is not None and value not in set(Profile):
            names = ", ".join(sorted(Profile))
            raise ValueError(f"unknown profile {value!r} (built-in: {names})")
        return value

    @classmethod
    def load(cls, path: str | Path) -> Config:
        """Read and validate a TOML file; raises :class:`ConfigError` naming the bad key."""
        file = Path(path)
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except OSError as error:
            raise ConfigError(f"{file}: cannot read: {error.strerror}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(f"{file}: not valid TOML: {error}") from None
        loaded = cls.from_mapping(data, base_dir=file.resolve().parent, source=str(file))
        loaded._source = file
        return loaded

    @property
    def source(self) -> Path | None:
        """The file this configuration was read from; None for the built-in defaults."""
        return self._source

    @classmethod
    def from_mapping(
        cls, data: dict[str, object], *, base_dir: Path | None = None, source: str = "config"
    ) -> Config:
        """Validate a parsed mapping (the TOML document) into a Config."""
        try:
            return cls.model_validate({**data, "base_dir": base_dir or Path.cwd()})
        except ValidationError as error:
            raise ConfigError(_describe(error, source)) from None

    @property
    def store_url(self) -> str | None:
        """``store.url`` with a relative SQLite path read from the configuration's folder;
        None when unset."""
        url = self.store.url
        if url is None:
            return None
        prefix, sep, path = url.partition(":///")
        if sep and prefix.partition("+")[0] == "sqlite" and path and not path.startswith("/"):
            database, query, parameters = path.partition("?")
            if database != ":memory:":
                return f"{prefix}:///{self.base_dir / database}{query}{parameters}"
        return url

    def with_settings(self, changes: Mapping[str, object], source: str) -> Config:
        """A copy with top-level keys changed (the CLI's ``--mode``, ``--profile``),
        validated; ``source`` names them in an error. It keeps the file it was read from."""
        changed = Config.from_mapping(
            {**self.model_dump(by_alias=True, exclude={"base_dir"}), **changes},
            base_dir=self.base_dir,
            source=source,
        )
        changed._source = self._source
        return changed

    def with_lists(self, protected: list[Path], known: list[Path]) -> Config:
        """A copy with more list files added (the CLI's ``--protect`` and ``--known``)."""
        domains = self.domains.model_copy(
            update={
                "protected_files": [*self.domains.protected_files, *protected],
                "known_files": [*self.domains.known_files, *known],
            }
        )
        return self.model_copy(update={"domains": domains})


def config_file(given: Path | None = None) -> Path | None:
    """The configuration file a command reads: ``given`` (``--config``), else the file
    ``$TYPOGATE_CONFIG`` names, else /etc/typogate/typogate.toml when it exists; None for
    the built-in defaults. A file named by the flag or the variable must exist (raises
    :class:`ConfigError` when the variable names none; reading a missing ``--config``
    says so); only the standard place may be absent."""
    if given is not None:
        return given
    named = os.environ.get(ENVIRONMENT)
    if named:
        if not Path(named).is_file():
            raise ConfigError(f"{named}: no such file (named by ${ENVIRONMENT})")
        return Path(named)
    return SYSTEM_FILE if SYSTEM_FILE.is_file() else None


def mail_name() -> str:
    """This host's name in mail: Debian's /etc/mailname, else its fully qualified name."""
    try:
        name = MAILNAME_FILE.read_text(encoding="utf-8").strip()
    except OSError:
        name = ""
    return name or socket.getfqdn() or "localhost"


def host_and_port(text: str, key: str) -> tuple[str, int]:
    """``127.0.0.1:10040`` or ``[::1]:10040`` -> (host, port). Raises :class:`ConfigError`
    naming ``key`` (a configuration key or a command-line flag) when it is not one."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{key}: {text!r} is not HOST:PORT")
    return host, int(port)


def milter_address(spec: str) -> tuple[str, int] | str:
    """Where a client on this machine reaches the milter listening at ``spec`` (libmilter's
    ``inet:10041@127.0.0.1``, ``inet6:10041@::1``, ``unix:/path``): ``(host, port)``, the
    wildcard (or no) address read as loopback, or the UNIX socket's path."""
    kind, _, where = spec.partition(":")
    if kind not in ("inet", "inet6"):
        return where
    port, _, host = where.partition("@")
    return reachable(host.strip("[]"), ipv6=kind == "inet6"), int(port)


def reachable(host: str, *, ipv6: bool) -> str:
    """``host`` as a client on this machine connects to it: loopback for the wildcard
    address (or none), of the family ``ipv6`` names."""
    if host in ("", "0.0.0.0", "::"):
        return "::1" if ipv6 else "127.0.0.1"
    return host


def _describe(error: ValidationError, source: str) -> str:
    lines = []
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        message = problem["msg"]
        if problem["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"{source}: {key}: {message}")
    return "\n".join(lines)
