"""The composition root: a running typogate, opened from a configuration and a store URL.

Every command starts here and takes what it needs: the Guard with its lists, the rules (the
configuration's, then the stored ones), the learned history, the store or the journal file,
the notice sender, and the hold/release service. Parts are built on first use, so a command
that only lists holds never builds the index, and ``typogate check`` never loads a database
driver unless it is given ``--db``.

A running adapter keeps its Guard current with the store (:meth:`Runtime.watch`): a rule
added in the dashboard of any process on the same store applies within ``RULES_SECONDS``,
and what other processes learned (deliveries, mail received, releases) within
``learning.refresh_seconds`` after their writer stored it (every ten seconds at most). Twice
a day it learns from every relationship again, beside the Guard in use, and swaps the result
in (evidence fades while nothing is stored; only a whole learning weighs that).
"""

from __future__ import annotations

import ctypes
import gc
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from typogate.config import Config, host_and_port
from typogate.errors import ConfigError, HoldError
from typogate.policy import Guard
from typogate.policy.index_cache import cache_folder
from typogate.policy.kept import MAX_AGE, RELEARN_AGE, LearnedSet
from typogate.store.journal import Journal
from typogate.vocabulary import Adapter, Evidence, MailState

if TYPE_CHECKING:
    from typogate.gateway.confirmation import Confirmations
    from typogate.gateway.gatekeeper import Gatekeeper
    from typogate.gateway.notice import NoticeSender
    from typogate.gateway.quarantine import Quarantine
    from typogate.store import Store
    from typogate.store.log_file import FileJournal
    from typogate.store.records import Correspondent, HoldRecord

log = logging.getLogger(__name__)

# How often a running adapter asks the store whether its rules changed (a cheap query).
RULES_SECONDS = 2.0


class Runtime:
    """One running typogate: its configuration, store, Guard and services.

    Open with :meth:`open`; :meth:`close` writes what is queued and stops what runs.
    """

    def __init__(
        self,
        config: Config,
        store: Store | None = None,
        journal: Journal | None = None,
        *,
        reread: Callable[[], Config] | None = None,
        index_cache: Path | None = None,
    ) -> None:
        self.config = config
        self.store = store
        # Where a Guard reads the index of its lists kept by an earlier start, and keeps
        # the one it builds (policy/index_cache.py); None: built at every start.
        self.index_cache = index_cache
        self.journal = journal  # where verdicts are recorded; None: nowhere (check, web)
        # Reads the configuration again, as at start (same file, same command-line flags):
        # what :meth:`reload` calls.
        self.reread = reread
        self._watcher: _StoreWatcher | None = None
        self._gatekeepers: list[Gatekeeper] = []
        self._guard_lock = threading.Lock()  # a reload and the store's rules, one at a time
        # As of when the evidence the Guard in use weighed was read (a kept set's time when
        # it took one): when it learns from every relationship again (RELEARN_AGE).
        self._learned_as_of: datetime | None = None

    @classmethod
    def open(
        cls,
        config: Config,
        db: str | None = None,
        *,
        recording: bool = False,
        create: bool = False,
        reread: Callable[[], Config] | None = None,
        keep_index: bool = True,
    ) -> Runtime:
        """Open a typogate for ``config`` on the store at ``db`` (default: the
        configuration's ``store.url``; neither: no store).

        ``recording`` is for the mail-flow adapters: their verdicts and holds go to the
        store (with its batched writer), or without a store to the configuration's journal
        file. Without ``recording`` the store is only read and administered, and a SQLite
        store that does not exist is an error rather than a new empty one, unless
        ``create``. Raises :class:`~typogate.errors.StoreURLError` for a URL of a
        database typogate does not support, :class:`~typogate.store.engine.StoreMissing`
        and :class:`~typogate.store.engine.StoreUnavailable` when the store cannot be
        opened. ``reread`` reads the configuration again for :meth:`reload`.
        ``keep_index`` reads the index of the lists that an earlier start kept, and keeps
        the one built (:func:`~typogate.policy.index_cache.cache_folder`); without it,
        each Guard builds its index, as the first start after an upgrade does.
        """
        index_cache = cache_folder() if keep_index else None
        db = db or config.store_url
        if db is None:
            journal: Journal | None = None
            if recording:
                from typogate.store.log_file import FileJournal

                journal = FileJournal(
                    config.base_dir / config.gateway.journal,
                    max_bytes=config.limits.journal_max_bytes,
                    keep=config.limits.journal_keep,
                )
            return cls(config, None, journal, reread=reread, index_cache=index_cache)
        from typogate.store import Store

        store = Store(
            db,
            writer=recording,
            create=recording or create,
            keep_allowed=config.store.keep_allowed,
            session_hours=config.web.session_hours,
        )
        journal = store if recording else None
        return cls(config, store, journal, reread=reread, index_cache=index_cache)

    # --- the parts ---------------------------------------------------------------------------

    @cached_property
    def guard(self) -> Guard:
        """The Guard (its index is built here, once), with the stored rules and the learned
        correspondents of the store."""
        guard, self._learned_as_of = self._build_guard(self.config)
        return guard

    def relearn(self, why: str = "a whole learning was asked for") -> Guard:
        """Build the Guard again, learning from every relationship in the store, keep what
        it learned, and judge with it from the next recipient on: after a command stored
        evidence of its own (``typogate learn``), what the gateways' next start takes; in a
        running gateway, twice a day (:meth:`learning_due`); timed by ``typogate doctor``
        as the longest start. ``why`` ends the log line."""
        config = self.config
        guard, as_of = self._build_guard(config, whole=why)
        if not self._use(guard, config, as_of, built_for=config):
            log.info("store: a reload came first; judging with the Guard it built")
            return self.guard
        return guard

    def foresee(self, relationships: list[Correspondent]) -> Guard:
        """A Guard that learned from ``relationships`` (as the store will hold them once a
        command writes what it weighs), with the store's rules, as a start learns (what
        the last start kept, and the domains whose evidence differs weighed again): kept
        nowhere, judging no mail; the Guard in use stays."""
        return self._build_guard(self.config, foreseen=relationships)[0]

    def learning_due(self) -> float | None:
        """How old (seconds) the evidence the Guard in use weighed is, once a running
        gateway should learn from every relationship again (:data:`RELEARN_AGE`); else
        None."""
        if self._learned_as_of is None:
            return None
        age = (datetime.now(UTC) - self._learned_as_of).total_seconds()
        return age if age >= RELEARN_AGE else None

    def _use(
        self,
        guard: Guard,
        config: Config,
        learned_as_of: datetime | None,
        *,
        built_for: Config | None = None,
    ) -> bool:
        """Judge with ``guard`` and ``config`` from the next recipient on, in every
        gatekeeper and the web interface at once; unless it was ``built_for`` a
        configuration that a reload has replaced meanwhile (False)."""
        with self._guard_lock:
            if built_for is not None and self.config is not built_for:
                return False
            self.config = config
            self.__dict__["guard"] = guard  # the cached property's value
            self._learned_as_of = learned_as_of
            for gatekeeper in self._gatekeepers:
                gatekeeper.use(guard, config.mode)
        if gc.get_freeze_count():
            # A serving process settled: the new Guard goes out of the collector's sight
            # too. The old one, frozen with the rest, was freed by reference counting as
            # it was dropped (it holds no cycle), so the collection walks what was made
            # since the last freeze, not all.
            self.settle()
        return True

    def settle(self) -> None:
        """Call once everything is built, before serving (and a swap calls it again).
        The Guard's index and the libraries loaded at start are long-lived: out of the
        cycle collector's sight (``gc.freeze``), or every full collection walks them again
        while mail waits. What building them freed goes back to the system."""
        gc.collect()
        gc.freeze()
        _return_freed_memory()

    def _build_guard(
        self,
        config: Config,
        *,
        whole: str | None = None,
        foreseen: list[Correspondent] | None = None,
    ) -> tuple[Guard, datetime | None]:
        """A Guard for ``config`` with the store's rules and what it learned from the
        store's relationships (``whole``: from every one, and why; ``foreseen``: from
        these instead, with what the last start kept, and keeping nothing), and as of when
        the evidence it weighed was read (None without a store)."""
        started = time.monotonic()
        guard = Guard(config, index_cache=self.index_cache)
        if self.store is None:
            return guard, None
        built = time.monotonic()
        guard.use_rules(self.store.rules.in_force(config.rules))
        as_of = datetime.now(UTC)
        relationships = self.store.history.relationships() if foreseen is None else foreseen
        read = time.monotonic()
        kept = foreseen is None  # what a foreseeing Guard learned is not the store's
        how, as_of = self._learn(guard, self.store, relationships, as_of, whole=whole, keep=kept)
        learned = time.monotonic()
        guard.use_mail_states(self.mail_states())
        # The bulk of a start: Postfix must wait longer than this (typogate doctor). Each
        # part grows with its own setting: the lists, the database, and the relationships
        # kept (docs/operations.md).
        log.info(
            "store: %d learned relationships (%d correspondent domains), ready in %.1f s: "
            "the lists and index %.1f s, reading the store %.1f s, learning %.1f s (%s)",
            len(guard.relationships),
            len(guard.relationships.organisation()),
            time.monotonic() - started,
            built - started,
            read - built,
            learned - read,
            how,
        )
        return guard, as_of

    def _learn(
        self,
        guard: Guard,
        store: Store,
        relationships: list[Correspondent],
        as_of: datetime,
        *,
        whole: str | None,
        keep: bool = True,
    ) -> tuple[str, datetime]:
        """Learn from every relationship, or (unless ``whole`` says why) take what the last
        start learned from them and weigh again what changed since (policy/kept.py); keep
        what a whole learning gives (unless not to ``keep``). Returns how, for the start's
        log line, and as of when the evidence weighed was read: ``as_of``, or the kept
        set's time."""
        from sqlalchemy.exc import SQLAlchemyError

        key = guard.learning_key
        why, kept = whole or "none kept", None
        if whole is None:
            try:
                kept = store.history.kept_learned(key)
            except SQLAlchemyError as error:
                log.warning("store: cannot read the learned set kept by the last start: %s", error)
        if kept is not None:
            kept_key, kept_as_of, text = kept
            age = (as_of - kept_as_of).total_seconds()
            if kept_key != key:
                why = "the code, configuration, lists or rules changed since the last start"
            elif not 0 <= age <= MAX_AGE:
                why = f"the set kept is {age / 3600:.0f} hours old"
            else:
                try:
                    changed = guard.restore(LearnedSet.from_json(text), relationships)
                except ValueError as error:
                    log.warning("store: the learned set kept cannot be read: %s", error)
                    why = "the set kept cannot be read"
                else:
                    how = f"kept {age / 60:.0f} min ago, {changed} domains weighed again"
                    return how, kept_as_of
        guard.learn_relationships(relationships)
        if not keep:
            return f"from every relationship, kept nowhere: {why}", as_of
        try:
            if not store.history.keep_learned(key, as_of, guard.learned_set().to_json()):
                log.info("store: another start kept what it learned, under the same key")
        except SQLAlchemyError as error:  # the next start learns everything again
            log.warning("store: cannot keep what this start learned: %s", error)
        return f"from every relationship: {why}", as_of

    @cached_property
    def release_secret(self) -> str | None:
        """The key that signs release links: ``release.secret``, else one typogate made
        once and keeps in the store (links work out of the box and survive restarts);
        None without either."""
        if self.config.release.secret:
            return self.config.release.secret
        return self.store.secret("release-links") if self.store is not None else None

    @cached_property
    def notices(self) -> NoticeSender | None:
        """The sender of typogate's notices, when ``gateway.notice_relay`` names a relay."""
        relay = self.config.gateway.notice_relay
        if not relay:
            return None
        from typogate.gateway.confirmation import confirm_link, confirm_signer
        from typogate.gateway.notice import NoticeSender, Relay
        from typogate.gateway.quarantine import link_signer, release_link
        from typogate.policy import Verdict

        host, port = host_and_port(relay, "gateway.notice_relay")
        link = confirm = None
        if self.release_secret is not None:
            signer = link_signer(self.release_secret)
            confirmer = confirm_signer(self.release_secret)
            base_url = self.config.release.base_url

            def link(hold_id: str) -> str:
                return release_link(signer, hold_id, base_url)

            def confirm(sender: str, verdicts: Sequence[Verdict], delivered: bool) -> str:
                return confirm_link(confirmer, sender, verdicts, base_url, delivered=delivered)

        return NoticeSender(
            Relay(host.strip("[]"), int(port)),
            self.config.gateway.notice_sender,
            link,
            self.config.release.link_hours,
            confirm,
        )

    @cached_property
    def quarantine(self) -> Quarantine:
        """Release and delete held messages (needs a store)."""
        from typogate.gateway.postfix_queue import PostfixQueue
        from typogate.gateway.quarantine import Quarantine

        store = self._need_store("hold and release")
        queue = PostfixQueue(self.config.release.postfix_config)
        return Quarantine(store.holds, queue, self.release_secret, self._released)

    @cached_property
    def confirmations(self) -> Confirmations:
        """Warned senders' confirm links (needs a store, which records each link used)."""
        from typogate.gateway.confirmation import Confirmations

        store = self._need_store("confirm links")
        return Confirmations(store.holds, self.release_secret, self._meant)

    def _released(self, hold: HoldRecord) -> None:
        """A sender's message was released: its recipients' domains were meant."""
        self._meant(hold.sender, hold.recipients)

    def _meant(self, sender: str | None, recipients: Sequence[str]) -> None:
        """``sender`` meant ``recipients`` (it released a message held for them, or
        confirmed a warning about them). Stored at once (a release is rare, and the
        evidence strong), and taught to this process's Guard if it runs one; others read
        it from the store."""
        from typogate.domains import InvalidAddress, parse_address
        from typogate.policy.relationships import levels

        store = self._need_store("learning from releases")
        counts: dict[tuple[str, str], int] = {}
        for recipient in recipients:
            try:
                domain = parse_address(recipient).domain.unicode
            except InvalidAddress:
                continue
            for level in levels(sender):
                counts[(level, domain)] = counts.get((level, domain), 0) + 1
            if "guard" in self.__dict__:
                self.guard.observe(sender, domain, Evidence.RELEASED)
        store.history.learn(counts, evidence=Evidence.RELEASED)

    def gatekeeper(self, adapter: Adapter) -> Gatekeeper:
        """The enforcement path for ``adapter``: this runtime's Guard, journal and notices."""
        from typogate.gateway.gatekeeper import Gatekeeper

        gatekeeper = Gatekeeper(
            self.guard,
            adapter,
            mode=self.config.mode,
            journal=self.journal,
            notices=self.notices,
            hold_seconds=self.config.limits.hold_record_seconds,
        )
        self._gatekeepers.append(gatekeeper)  # a reload hands it the new Guard
        return gatekeeper

    # --- reloading -----------------------------------------------------------------------------

    def reload(self) -> bool:
        """Read the configuration again and judge with it from the next recipient on.

        A new Guard (lists, rules, thresholds, actions, mode) is built beside the one in
        use, then swapped into every gatekeeper and the web interface at once: connections
        stay open, and no recipient is judged by a half-built Guard. A configuration that
        cannot be read or used is logged and the one in use kept (returns False).
        Listening addresses, the store, notices and release settings change only at a
        restart, which is said when they differ.
        """
        if self.reread is None:
            log.warning("reload: this command has no configuration to read again")
            return False
        try:
            config = self.reread()
            guard, as_of = self._build_guard(config)
        except Exception as error:  # whatever it is, the mail flow goes on with the old one
            log.error("reload: the configuration cannot be used, keeping the one in use: %s", error)
            return False
        old = self.config
        self._use(guard, config, as_of)
        log.info(
            "reload: %s, %d protected and known domains, %d rules, %s mode",
            config.source or "built-in defaults",
            guard.domain_count,
            len(config.rules),
            config.mode,
        )
        if later := restart_only_changes(old, config):
            log.warning("reload: %s change at the next restart", ", ".join(later))
        return True

    def finish_hold_actions(self) -> None:
        """Finish the hold actions a crash left between the store and Postfix (recorded as
        intents, not yet confirmed), against the real queue. Called when a gateway, the web
        interface or a hold command starts; when Postfix's queue cannot be read the reason
        is logged and the intents wait for the next start."""
        if self.store is None or not self.store.holds.intents():
            return
        try:
            self.quarantine.finish_interrupted()
        except HoldError as error:
            log.error("hold actions left unfinished by a crash wait for the next start: %s", error)

    # --- keeping current -----------------------------------------------------------------------

    def apply_rules(self) -> None:
        """Give the Guard the configuration's rules followed by the stored ones (at once, in
        this process; other processes on the store within ``RULES_SECONDS``)."""
        if self.store is not None:
            with self._guard_lock:
                self.guard.use_rules(self.store.rules.in_force(self.config.rules))

    def watch(self, every: float = RULES_SECONDS) -> _StoreWatcher:
        """A service (for the gateway's controller) that keeps the Guard's rules current
        with the store, asking every ``every`` seconds."""
        store = self._need_store("following the store")
        self._watcher = _StoreWatcher(self, store, every)
        return self._watcher

    def close(self) -> None:
        """Write what is queued, send the notices still waiting (for a few seconds), stop."""
        if self._watcher is not None:
            self._watcher.stop()
        # The store first: its writer takes what is queued only for a while after a stop
        # signal to the process group, and a notice is a courtesy a stop may cut short.
        if self.store is not None:
            self.store.close()
        elif self.journal is not None:
            journal: FileJournal = self.journal  # type: ignore[assignment]
            journal.close()
        if "notices" in self.__dict__ and self.notices is not None:
            self.notices.close()

    def mail_states(self) -> dict[str, MailState]:
        """What the monitor last found in the DNS for each look-alike (A-label -> state)."""
        store = self._need_store("the monitor's findings")
        return {
            domain: MailState(state) for domain, state in store.look_alikes.latest_states().items()
        }

    def _need_store(self, what: str) -> Store:
        if self.store is None:
            from typogate.store.engine import StoreUnavailable

            raise StoreUnavailable(f"{what} needs a store (--db)")
        return self.store


# Settings a running process took at start and keeps until it restarts; everything else a
# reload applies (the Guard's configuration).
_RESTART_ONLY = {
    "gateway": (
        "policy_listen",
        "milter_listen",
        "proxy_listen",
        "next_hop",
        "notice_relay",
        "notice_from",
        "journal",
    ),
    "learning": ("refresh_seconds",),
    "store": None,  # None: the whole section
    "web": None,
    "release": None,
}


def restart_only_changes(old: Config, new: Config) -> list[str]:
    """The keys that differ between ``old`` and ``new`` and that a reload does not apply."""
    changed = []
    before, after = old.model_dump(), new.model_dump()
    for section, keys in _RESTART_ONLY.items():
        for key in keys or after[section]:
            if before[section].get(key) != after[section].get(key):
                changed.append(f"{section}.{key}")
    return changed


class _StoreWatcher:
    """Keeps a running Guard current with the store: its rules every ``every`` seconds (a
    cheap question), and the relationships other processes stored every
    ``learning.refresh_seconds`` (what changed since the last look)."""

    def __init__(self, runtime: Runtime, store: Store, every: float) -> None:
        self.runtime = runtime
        self.store = store
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="store-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _follow(self) -> None:
        from sqlalchemy.exc import SQLAlchemyError

        from typogate.gateway.controller import leave_signals_to_main_thread

        leave_signals_to_main_thread()

        seen = None
        monitored = None
        unreachable_since: float | None = None  # when the store stopped answering
        learn_again_after = 0.0  # a whole learning that failed is tried again after a while
        refresh = self.runtime.config.learning.refresh_seconds
        # Rows are stamped with the time of the mail they count, by writers in other
        # processes: look back a little further than the last look.
        learned_up_to = datetime.now(UTC) - timedelta(seconds=_RELATIONSHIP_MARGIN)
        next_refresh = time.monotonic() + refresh
        # The first round applies the stored rules too: one may have changed since the Guard
        # was built.
        while not self._stop.wait(0 if seen is None else self.every):
            try:
                version = self.store.rules.version()
                if version != seen:
                    self.runtime.apply_rules()
                    if seen is not None:
                        log.info("rules changed in the store: %d stored rules now", version[0])
                    seen = version
                if time.monotonic() >= next_refresh:
                    looked = datetime.now(UTC)
                    changed = self.store.history.relationships(since=learned_up_to)
                    if changed:
                        self.runtime.guard.learn_relationships(changed)
                    learned_up_to = looked - timedelta(seconds=_RELATIONSHIP_MARGIN)
                    next_refresh = time.monotonic() + refresh
                    newest = self.store.look_alikes.runs(limit=1)
                    if newest and newest[0].id != monitored:
                        if monitored is not None:  # the Guard loaded the older run at start
                            self.runtime.guard.use_mail_states(self.runtime.mail_states())
                        monitored = newest[0].id
                age = self.runtime.learning_due()
                if age is not None and time.monotonic() >= learn_again_after:
                    learn_again_after = time.monotonic() + _RELEARN_RETRY_SECONDS
                    self._learn_again(age)
                if unreachable_since is not None:
                    log.warning(
                        "store: the database answers again after %.0f s; rules and"
                        " relationships are read from it again",
                        time.monotonic() - unreachable_since,
                    )
                    unreachable_since = None
            except SQLAlchemyError as error:
                if unreachable_since is None:  # said once, not every few seconds
                    log.error(
                        "store: cannot read rules or relationships (keeping those in use): %s",
                        error,
                    )
                    unreachable_since = time.monotonic()
            except ConfigError as error:  # a stored rule the Guard refuses: keep the old ones
                log.error("store: a stored rule cannot be used (keeping those in use): %s", error)
                seen = version

    def _learn_again(self, age: float) -> None:
        """Learn from every relationship again, beside the Guard in use, and judge with the
        result (evidence faded since the Guard in use weighed it)."""
        try:
            self.runtime.relearn(f"what the Guard in use weighed is {age / 3600:.0f} hours old")
        except Exception:  # the store did not answer, or worse: the mail flow goes on
            log.exception(
                "store: learning again failed, judging with the Guard in use (trying again in "
                "%.0f min)",
                _RELEARN_RETRY_SECONDS / 60,
            )


# Relationships are stamped with their mail's time by writers that batch for up to ~10 s.
_RELATIONSHIP_MARGIN = 60.0
# A whole learning that failed (the store did not answer) is tried again after this.
_RELEARN_RETRY_SECONDS = 600.0


def _return_freed_memory() -> None:
    """Give back to the system what Python freed and the allocator kept: learning's
    temporaries at a start, the old Guard at a swap (glibc's ``malloc_trim``, a few ms).
    Without it a gateway that swapped many Guards holds about as much as while it learns,
    two Guards' worth (docs/operations.md). Not glibc (musl, macOS): nothing."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return
    trim(0)
