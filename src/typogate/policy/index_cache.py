"""The candidate index of the last start, kept on disk for the next one.

Reading the lists and building the index is most of a short command's start (``typogate
check``: 0.3 of 0.7 s) and a fixed part of every gateway start. The same lists, read by
the same code and libraries, make the same index; so a build keeps the index in a file
named by a key made of those (:func:`index_key`), and a start with the same key reads the
file instead, in a sixth of the time.

What is read must be what was kept: the file holds a SHA-256 of its contents, and is read
only when it, and its folder, belong to this user and no one else may write them. Any
doubt (a damaged or foreign file, a folder that cannot be made) and the index is built
as without a cache: a cache never changes a verdict, and never stops a start.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import sys
import tempfile
import time
import unicodedata
from importlib import metadata
from pathlib import Path

from typogate.config import Config
from typogate.domains import CandidateIndex, Domain, InvalidAddress
from typogate.errors import ConfigError
from typogate.policy.kept import code_digest
from typogate.policy.lists import DomainLists, Listed
from typogate.policy.readings import parse_once

log = logging.getLogger("typogate")

# Bumped when the file's layout changes; the index's own layout is in the code digest.
_FORMAT = b"typogate-index 1\n"
# Fewer listed domains build in less time than it takes to keep them: a test's few names.
MIN_DOMAINS = 1000
# Files of other lists (another service's configuration, an older list) kept beside the
# newest; the least recently used go first.
KEEP = 8
# A file being written that is older than this was left by a process that stopped.
_ABANDONED = 3600.0
# The libraries whose data decides how a listed domain is read: its public suffix, IDNA.
_READING_LIBRARIES = ("publicsuffixlist", "idna", "email-validator")


def cache_folder() -> Path | None:
    """Where this process keeps indexes: systemd's ``CacheDirectory`` (the units set
    ``CACHE_DIRECTORY``), else ``$XDG_CACHE_HOME/typogate``, else ``~/.cache/typogate``;
    None when there is no home to keep one in."""
    systemd = os.environ.get("CACHE_DIRECTORY", "").split(":")[0]
    if systemd:
        return Path(systemd)
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):  # the XDG spec: a relative path is to be ignored
        return Path(xdg) / "typogate"
    try:
        return Path.home() / ".cache" / "typogate"
    except RuntimeError:  # no HOME and no passwd entry
        return None


def index_key(config: Config, lists: DomainLists) -> str:
    """What the index depends on, as a SHA-256: the code that reads and files domains, the
    libraries that read them, the interpreter's Unicode data, the domains listed (as
    written, in order) and the closed suffixes."""
    digest = hashlib.sha256(_FORMAT)
    digest.update(code_digest())
    versions = [metadata.version(name) for name in _READING_LIBRARIES]
    facts = [sys.version, unicodedata.unidata_version, sys.byteorder, *versions]
    digest.update(json.dumps(facts).encode())
    digest.update(json.dumps(config.model.closed_suffixes).encode())
    for kind, entries in (("protected", lists.protected), ("known", lists.known)):
        digest.update(json.dumps([kind, *(entry.text for entry in entries)]).encode())
    return digest.hexdigest()


def built_index(
    config: Config, lists: DomainLists, folder: Path | None
) -> tuple[CandidateIndex, frozenset[str]]:
    """The index of ``lists`` and the A-labels of its protected domains: read from
    ``folder`` when a start with the same :func:`index_key` kept it there, else built
    (and kept there when ``folder`` is given). Raises :class:`ConfigError` for a listed
    entry that is no domain."""
    index = _kept_or_built(config, lists, folder)
    return index, frozenset(domain.ascii for domain in index.protected_domains)


def _kept_or_built(config: Config, lists: DomainLists, folder: Path | None) -> CandidateIndex:
    if folder is None:
        return _build(config, lists)
    key = index_key(config, lists)
    kept = _read(folder, key)
    if kept is not None:
        return kept
    keep = len(lists.protected) + len(lists.known) >= MIN_DOMAINS
    index = _build(config, lists, keep=keep)
    if keep:
        _keep(folder, key, index)
    return index


def _build(config: Config, lists: DomainLists, *, keep: bool = False) -> CandidateIndex:
    return CandidateIndex(
        _parse_listed(lists.known),
        protected=_parse_listed(lists.protected),
        closed=config.model.closed_suffixes,
        keep_keys=keep,
    )


def _read(folder: Path, key: str) -> CandidateIndex | None:
    path = folder / f"{key}.index"
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None  # none kept (the common miss), or a link someone put in its place
    try:
        with os.fdopen(descriptor, "rb") as file:
            if not (_ours(os.fstat(file.fileno())) and _ours(os.stat(folder))):
                log.warning("index cache: %s is not this user's alone; not read", path)
                return None
            data = memoryview(file.read())  # read in place, not copied
        checksum, body = data[:32], data[32:]
        if hashlib.sha256(body).digest() != checksum or body[: len(_FORMAT)] != _FORMAT:
            raise ValueError("its checksum does not match its contents")
        index = CandidateIndex.from_bytes(body[len(_FORMAT) :])
        os.utime(path)  # recently used: kept when older files go
    except (OSError, ValueError) as error:
        log.warning("index cache: %s cannot be read (%s); building the index", path, error)
        return None
    return index


def _keep(folder: Path, key: str, index: CandidateIndex) -> None:
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _ours(os.stat(folder)):
            log.warning("index cache: %s is not this user's alone; nothing kept", folder)
            return
        # Written whole under another name, then renamed: a reader never sees half a file.
        descriptor, temporary = tempfile.mkstemp(dir=folder, suffix=".partial")
        try:
            with os.fdopen(descriptor, "wb") as file:
                body = _FORMAT + index.to_bytes()
                file.write(hashlib.sha256(body).digest())
                file.write(body)
            os.replace(temporary, folder / f"{key}.index")
        except BaseException:
            os.unlink(temporary)
            raise
        kept = sorted(folder.glob("*.index"), key=_last_used, reverse=True)
        # And what a process stopped while writing left (another may be writing now).
        abandoned = [
            partial
            for partial in folder.glob("*.partial")
            if time.time() - _last_used(partial) > _ABANDONED
        ]
        for stale in kept[KEEP:] + abandoned:
            stale.unlink(missing_ok=True)
    except OSError as error:  # a full disk, a read-only home: the next start builds again
        log.warning("index cache: cannot keep the index in %s: %s", folder, error)


def _last_used(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # another process took it away meanwhile
        return 0.0


def _ours(status: os.stat_result) -> bool:
    """Owned by this user, and writable by no one else (what a cache's contents are
    trusted for: it decides which domains are protected)."""
    others_write = stat.S_IWGRP | stat.S_IWOTH
    return status.st_uid == os.geteuid() and not status.st_mode & others_write


def _parse_listed(listed: list[Listed]) -> list[Domain]:
    domains = []
    for entry in listed:
        try:
            domains.append(parse_once(entry.text))
        except InvalidAddress as error:
            raise ConfigError(
                f"{entry.origin}: {entry.text!r} is not a domain: {error.reason}"
            ) from None
    return domains
