"""What the web interface works with: the store's views, the quarantine, the live Guard."""

from __future__ import annotations

from dataclasses import dataclass, field

from typogate.policy import Config, Guard
from typogate.store import Store
from typogate.store.history import History
from typogate.store.quarantine import Quarantine, release_secret
from typogate.store.rule_table import RuleTable
from typogate.web.accounts import Accounts


@dataclass
class WebContext:
    """One per app. ``guard`` is the running gateway's Guard under ``typogate serve`` (rule
    edits apply to it at once), a Guard of its own under ``typogate web``."""

    store: Store
    config: Config
    guard: Guard
    accounts: Accounts = field(init=False)
    history: History = field(init=False)
    quarantine: Quarantine = field(init=False)
    rule_table: RuleTable = field(init=False)

    def __post_init__(self) -> None:
        self.accounts = Accounts(self.store.engine, self.config.web.session_hours)
        self.history = History(self.store.engine)
        release = self.config.release
        self.quarantine = Quarantine(
            self.store, release_secret(self.store, release.secret), release.postfix_config
        )
        self.rule_table = RuleTable(self.store.engine)

    @property
    def link_seconds(self) -> int:
        """How long a sender's release link works."""
        return int(self.config.release.link_hours * 3600)

    def apply_rules(self) -> None:
        """Give the Guard the configuration's rules followed by the stored ones."""
        self.guard.use_rules(self.rule_table.in_force(self.config.rules))
