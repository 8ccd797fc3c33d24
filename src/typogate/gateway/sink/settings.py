"""The ``[sink]`` section of typogate's configuration file.

The sink reads the same TOML file as every command: :class:`SinkConfig` is the whole
configuration plus this section, so the protected lists (``[domains]``, ``profile``) say
which organisations the sink serves, and ``[sink]`` which look-alike domains it answers for.

    [sink]
    listen = "0.0.0.0:25"
    hostname = "sink.example.net"
    retention_days = 90
    [[sink.serve]]
    suffix = "ml"                 # every domain under .ml that has no mail server of its own
    [[sink.serve]]
    domain = "army.ml"            # a single look-alike; beats the suffix entry
    [[sink.serve]]
    domain = "realshop.ml"
    choice = "forward"            # a real business: its mail goes on to its own MX
    forward_to = "mx.realshop.ml:25"
    [[sink.serve]]
    domain = "navy.ml"
    choice = "null"               # no mail at all: a null MX (RFC 7505), not the sink
    [[sink.reports]]
    intended = "army.mil"         # the intended organisation opted in to daily reports
    contact = "typo-reports@army.mil"
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from typogate.config import Config


class Choice(StrEnum):
    """What the operator chose for a served look-alike domain."""

    REFUSE = "refuse"  # MX to the sink: refused at RCPT with the address the sender meant
    FORWARD = "forward"  # MX to the sink: a real registrant's mail is passed on to its MX
    NULL = "null"  # a null MX (RFC 7505): senders fail at once, nothing reaches the sink


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Served(_Section):
    """One look-alike domain (and its subdomains) or a whole suffix the sink answers for."""

    domain: str | None = None
    suffix: str | None = None
    choice: Choice = Choice.REFUSE
    forward_to: str = ""  # HOST:PORT of the registrant's own mail server (choice = forward)

    @model_validator(mode="after")
    def _one_target(self) -> Served:
        if (self.domain is None) == (self.suffix is None):
            raise ValueError("a served entry names exactly one of 'domain' or 'suffix'")
        if (self.choice is Choice.FORWARD) != bool(self.forward_to):
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


class SinkSettings(_Section):
    """Where the sink listens, what it serves, what it keeps and whom it reports to."""

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


class SinkConfig(Config):
    """typogate's configuration with the ``[sink]`` section."""

    sink: SinkSettings = SinkSettings()
