"""What the web interface works with: a running typogate that has a store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

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

    def apply_rules(self) -> None:
        """Give the Guard the configuration's rules followed by the stored ones."""
        self.runtime.apply_rules()
