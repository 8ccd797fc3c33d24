"""What the web interface works with: a running typogate that has a store."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from typogate.config import Config
from typogate.policy import Guard

if TYPE_CHECKING:
    from typogate.gateway.quarantine import Quarantine
    from typogate.runtime import Runtime
    from typogate.store import Store
    from typogate.store.accounts import Accounts
    from typogate.store.history import History
    from typogate.store.rules import RuleTable


@dataclass(frozen=True)
class WebContext:
    """One per app, over the runtime it serves. Under ``typogate serve`` that runtime is the
    running gateway's (rule edits apply to its Guard at once); under ``typogate web`` one of
    its own (the gateways on the same store pick the edits up within seconds)."""

    runtime: Runtime
    store: Store

    @classmethod
    def of(cls, runtime: Runtime) -> WebContext:
        """The context of ``runtime``, which must have a store."""
        if runtime.store is None:
            raise ValueError("the web interface needs a store")
        return cls(runtime, runtime.store)

    @property
    def config(self) -> Config:
        return self.runtime.config

    @property
    def guard(self) -> Guard:
        return self.runtime.guard

    @property
    def quarantine(self) -> Quarantine:
        return self.runtime.quarantine

    @property
    def accounts(self) -> Accounts:
        return self.store.accounts

    @property
    def history(self) -> History:
        return self.store.history

    @property
    def rules(self) -> RuleTable:
        return self.store.rules

    @property
    def link_seconds(self) -> int:
        """How long a sender's release link works."""
        return int(self.config.release.link_hours * 3600)

    def release_link_warning(self, listen_host: str) -> str | None:
        """Why the release links in notices would not work for senders, or None: a
        ``release.base_url`` on loopback while notices go out to senders' own machines (a
        notice relay is set) or the web interface listens beyond this machine."""
        base_url = self.config.release.base_url
        if not _loopback(urlsplit(base_url).hostname or ""):
            return None
        relay = self.config.gateway.notice_relay
        if not relay and _loopback(listen_host):
            return None
        where = "notices go to senders" if relay else f"the web interface listens on {listen_host}"
        return (
            f"release.base_url is {base_url}, a loopback address, but {where}: the release "
            "and confirm links in typogate's notices will not open on the senders' machines. Set "
            "release.base_url to the address senders reach the web interface at."
        )

    def apply_rules(self) -> None:
        """Give the Guard the configuration's rules followed by the stored ones."""
        self.runtime.apply_rules()


def _loopback(host: str) -> bool:
    """Whether ``host`` (a name or address) is this machine only."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
