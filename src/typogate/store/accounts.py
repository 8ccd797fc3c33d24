"""Who may use the web interface: accounts (argon2id password hashes) and sessions.

A session is a random cookie value; the store keeps only its SHA-256, the account it
belongs to, its CSRF token and when it expires. Signing out deletes the row, so a copied
cookie dies with the session.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from typogate.errors import TypogateError
from typogate.store.models import AccountRow, WebSessionRow
from typogate.store.records import utc
from typogate.vocabulary import Role

MIN_PASSWORD = 12
_USERNAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-@")


class AccountError(TypogateError, ValueError):
    """An account that cannot be made or changed; the message says why."""


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The person behind a request: who, with what role, and their session's CSRF token."""

    username: str
    role: Role
    csrf_token: str

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


class Accounts:
    """Accounts and sessions in the store."""

    def __init__(self, engine: Engine, session_hours: float = 12.0) -> None:
        self.engine = engine
        self.session_length = timedelta(hours=session_hours)
        self._hasher = PasswordHasher()  # argon2id with the library's current parameters
        self._decoy_hash: str | None = None

    def _decoy(self) -> str:
        """Verified against when the account does not exist, so a wrong name costs as long as
        a wrong password and timing does not tell which names exist. Made on first use: a
        hash costs ~0.5 s of CPU, and most commands that open the store never sign anyone in."""
        if self._decoy_hash is None:
            self._decoy_hash = self._hasher.hash(secrets.token_urlsafe(16))
        return self._decoy_hash

    # --- accounts --------------------------------------------------------------------------

    def create(self, username: str, password: str, role: Role) -> None:
        """Add an account; raises :class:`AccountError` for a taken name or weak password."""
        name = _username(username)
        _check_password(password)
        try:
            with Session(self.engine) as session, session.begin():
                session.add(
                    AccountRow(
                        username=name,
                        password_hash=self._hasher.hash(password),
                        role=role.value,
                        created=datetime.now(UTC),
                    )
                )
        except IntegrityError:
            raise AccountError(f"there is already an account {name!r}") from None

    def first_admin(self) -> str | None:
        """When there is no account at all, make ``admin`` with a random password and
        return the password (to be shown once); otherwise None."""
        with Session(self.engine) as session:
            if session.scalar(select(AccountRow.username).limit(1)) is not None:
                return None
        password = secrets.token_urlsafe(15)
        try:
            self.create("admin", password, Role.ADMIN)
        except AccountError:  # another process made it first
            return None
        return password

    def set_password(self, username: str, password: str) -> None:
        """Change a password; every session of that account ends."""
        _check_password(password)
        with Session(self.engine) as session, session.begin():
            row = session.get(AccountRow, _username(username))
            if row is None:
                raise AccountError(f"no account {username!r}")
            row.password_hash = self._hasher.hash(password)
            session.execute(delete(WebSessionRow).where(WebSessionRow.username == row.username))

    def remove(self, username: str) -> None:
        """Delete an account and its sessions."""
        with Session(self.engine) as session, session.begin():
            row = session.get(AccountRow, _username(username))
            if row is None:
                raise AccountError(f"no account {username!r}")
            session.delete(row)
            session.execute(delete(WebSessionRow).where(WebSessionRow.username == row.username))

    def all(self) -> list[tuple[str, Role, datetime]]:
        """Every account: name, role, created."""
        with Session(self.engine) as session:
            rows = session.scalars(select(AccountRow).order_by(AccountRow.username))
            return [(row.username, Role(row.role), utc(row.created)) for row in rows]

    def authenticate(self, username: str, password: str) -> str | None:
        """The account name when the password is right, else None."""
        try:
            name = _username(username)
        except AccountError:
            return None
        with Session(self.engine) as session, session.begin():
            row = session.get(AccountRow, name)
            try:
                self._hasher.verify(row.password_hash if row else self._decoy(), password)
            except (VerificationError, InvalidHashError):
                return None
            if row is None:
                return None
            if self._hasher.check_needs_rehash(row.password_hash):
                row.password_hash = self._hasher.hash(password)
            return name

    # --- sessions --------------------------------------------------------------------------

    def open_session(self, username: str) -> str:
        """Start a session for a signed-in account; returns the cookie value."""
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with Session(self.engine) as session, session.begin():
            # Expired sessions go whenever someone signs in: the table never grows unbounded.
            session.execute(delete(WebSessionRow).where(WebSessionRow.expires < now))
            session.add(
                WebSessionRow(
                    token_hash=_digest(token),
                    username=username,
                    csrf_token=secrets.token_urlsafe(32),
                    created=now,
                    expires=now + self.session_length,
                )
            )
        return token

    def session(self, token: str | None) -> SignedIn | None:
        """Who a session cookie belongs to, or None (missing, unknown, expired)."""
        if not token:
            return None
        query = (
            select(WebSessionRow.csrf_token, WebSessionRow.expires, AccountRow)
            .join(AccountRow, AccountRow.username == WebSessionRow.username)
            .where(WebSessionRow.token_hash == _digest(token))
        )
        with Session(self.engine) as session:
            found = session.execute(query).first()
        if found is None:
            return None
        csrf, expires, account = found
        if utc(expires) < datetime.now(UTC):
            return None
        return SignedIn(account.username, Role(account.role), csrf)

    def close_session(self, token: str | None) -> None:
        """Sign out: the session's row is deleted."""
        if token:
            with Session(self.engine) as session, session.begin():
                session.execute(
                    delete(WebSessionRow).where(WebSessionRow.token_hash == _digest(token))
                )


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _username(text: str) -> str:
    name = text.strip().lower()
    if not name or len(name) > 64 or not set(name) <= _USERNAME_CHARS:
        raise AccountError(f"bad account name {text!r}: 1-64 of a-z, 0-9, '.', '_', '-', '@'")
    return name


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
