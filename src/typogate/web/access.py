"""Who may do what: sign-in, roles and CSRF checks, as FastAPI dependencies.

Every page and API route depends on :func:`signed_in` (``/health`` alone does not). Every
request that changes something also depends on :func:`csrf_checked`: the session's token
must come back in the ``csrf_token`` form field or the ``X-CSRF-Token`` header. Forms used
before sign-in (the login form, a sender's release page) carry a token that must match
the ``typogate_form`` cookie (double submit).
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from typogate.errors import TypogateError
from typogate.store.accounts import SignedIn
from typogate.web.context import WebContext

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
SESSION_COOKIE = "typogate_session"
FORM_COOKIE = "typogate_form"
# Set on each successful sign-in: the browser that carries it for an account is one its
# owner used before, and is let through an attack on that account after a short wait.
DEVICE_COOKIE = "typogate_device"
DEVICE_DAYS = 180


class LoginRequired(TypogateError):
    """No valid session: pages answer with the login form, the API with 401."""


def context(request: Request) -> WebContext:
    """The app's :class:`WebContext`."""
    ctx: WebContext = request.app.state.typogate
    return ctx


Context = Annotated[WebContext, Depends(context)]


def signed_in(request: Request, ctx: Context) -> SignedIn:
    """The signed-in person, or :class:`LoginRequired`."""
    who = ctx.accounts.session(request.cookies.get(SESSION_COOKIE))
    if who is None:
        raise LoginRequired()
    request.state.who = who
    return who


Viewer = Annotated[SignedIn, Depends(signed_in)]


def admin(who: Viewer) -> SignedIn:
    """The signed-in person if an admin; else 403."""
    if not who.is_admin:
        raise HTTPException(403, "this needs an admin account")
    return who


async def _sent_token(request: Request) -> str:
    header = request.headers.get("x-csrf-token")
    if header is not None:
        return header
    if request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get("csrf_token")
        return value if isinstance(value, str) else ""
    return ""


async def csrf_checked(request: Request, who: Viewer) -> SignedIn:
    """The signed-in person, if the request carries their session's CSRF token; else 403."""
    if not hmac.compare_digest((await _sent_token(request)).encode(), who.csrf_token.encode()):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")
    return who


def admin_csrf_checked(who: Annotated[SignedIn, Depends(csrf_checked)]) -> SignedIn:
    """An admin's request that carries the CSRF token."""
    return admin(who)


Writer = Annotated[SignedIn, Depends(csrf_checked)]
Admin = Annotated[SignedIn, Depends(admin_csrf_checked)]


def form_token(request: Request) -> str:
    """The token for a form shown before sign-in: the browser's form cookie, or a new one
    (which :func:`keep_form_token` then sets)."""
    return request.cookies.get(FORM_COOKIE) or secrets.token_urlsafe(32)


def keep_form_token(response: Response, token: str, secure: bool) -> None:
    """Set the form cookie that :func:`check_form_token` compares with the form field."""
    response.set_cookie(
        FORM_COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/"
    )


class SignInRefused(TypogateError):
    """A refused sign-in: the HTTP status, the sentence to show, and for a throttled one
    the seconds to wait."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        """``Retry-After`` for a throttled sign-in."""
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}


def client_address(request: Request, proxies: Sequence[IPNetwork]) -> str:
    """Who is signing in: the connection's address, or when that is one of ``proxies``
    (``web.trusted_proxies``), the right-most ``X-Forwarded-For`` address that is not a
    proxy (what the nearest proxy saw; the left part of the header is the client's own
    word). The header from anyone else is ignored."""
    peer = request.client.host if request.client else ""
    if not _among(peer, proxies):
        return peer or "?"
    hops = [
        hop.strip()
        for header in request.headers.getlist("x-forwarded-for")
        for hop in header.split(",")
        if hop.strip()
    ]
    for hop in reversed(hops):
        if not _among(hop, proxies):
            return hop
    return hops[0] if hops else peer


def _among(address: str, networks: Sequence[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def sign_in(
    request: Request, ctx: WebContext, username: str, password: str, response: Response
) -> str:
    """Check the password under the sign-in throttle, open a session and set its cookie
    (and the browser's device cookie) on ``response``; returns the session's cookie value.
    Raises :class:`SignInRefused`."""
    throttle: LoginThrottle = request.app.state.login_throttle
    proxies: tuple[IPNetwork, ...] = request.app.state.trusted_proxies
    client = client_address(request, proxies)
    account = username.strip().lower()[:64]
    devices = _device_signer(request, ctx)
    device = _device(request, devices, account)
    # Counted before the password is checked: parallel guesses cannot all slip through.
    attempt = throttle.attempt(client, account, device)
    if isinstance(attempt, float):
        wait = max(1, math.ceil(attempt))
        raise SignInRefused(
            429, f"Too many failed sign-ins. Try again in {wait} seconds.", retry_after=wait
        )
    try:
        name = ctx.accounts.authenticate(username, password)
    finally:
        throttle.failed(attempt)  # until told otherwise: a store error is no free guess
    if name is None:
        raise SignInRefused(401, "Wrong account name or password.")
    throttle.succeeded(attempt)
    token = ctx.accounts.open_session(name)
    secure = ctx.config.web.secure_cookies
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(ctx.config.web.session_hours * 3600),
        httponly=True,
        samesite="strict",
        secure=secure,
        path="/",
    )
    known = devices.dumps({"account": name, "device": device or secrets.token_urlsafe(12)})
    response.set_cookie(
        DEVICE_COOKIE,
        known,
        max_age=DEVICE_DAYS * 86400,
        httponly=True,
        samesite="strict",
        secure=secure,
        path="/",
    )
    return token


def _device_signer(request: Request, ctx: WebContext) -> URLSafeTimedSerializer:
    """What signs device cookies, with a key typogate keeps in the store (made once)."""
    signer: URLSafeTimedSerializer | None = getattr(request.app.state, "device_signer", None)
    if signer is None:
        signer = URLSafeTimedSerializer(ctx.store.secret("web-devices"), salt="typogate-device")
        request.app.state.device_signer = signer
    return signer


def _device(request: Request, signer: URLSafeTimedSerializer, account: str) -> str | None:
    """The id of this browser when it signed in to ``account`` before (its device cookie,
    checked), else None."""
    cookie = request.cookies.get(DEVICE_COOKIE)
    if not cookie:
        return None
    try:
        known = signer.loads(cookie, max_age=DEVICE_DAYS * 86400)
    except BadSignature:
        return None
    if not isinstance(known, dict) or known.get("account") != account:
        return None
    device = known.get("device")
    return device if isinstance(device, str) else None


def sign_out(request: Request, ctx: WebContext, response: Response) -> None:
    """End the session on the server, not only in this browser, and drop its cookie."""
    ctx.accounts.close_session(request.cookies.get(SESSION_COOKIE))
    response.delete_cookie(SESSION_COOKIE, path="/")


async def check_form_token(request: Request) -> None:
    """403 unless the form's token matches the form cookie."""
    cookie = request.cookies.get(FORM_COOKIE, "")
    sent = await _sent_token(request)
    if not cookie or not hmac.compare_digest(sent.encode(), cookie.encode()):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")


@dataclass(slots=True)
class Attempt:
    """A sign-in: counted as a failure from when it is let through until it succeeds. While
    its password is being checked it counts as failing now; then from when it failed."""

    client: str
    account: str
    device: str | None  # the browser's device cookie for this account, if it has one
    failed_at: float | None = None  # None: still being checked
    time: float = field(default_factory=time.monotonic)  # when it was let through


class LoginThrottle:
    """Back-off, not lock-out, per client address, per account and per browser.

    Every attempt counts as a failure from the moment it is let through (under a lock, so
    parallel guesses are counted before any password is checked) until it succeeds. Each
    client address and each account has ``free`` failures in ``window`` seconds; after
    that, an attempt waits ``base`` seconds after the last failure, doubling with every
    failure, up to ``cap``. A browser that signed in to the account before (it carries the
    account's signed device cookie, and has fewer than ``free`` failures of its own) waits
    at most ``usual_cap``: an attack on the account, even from the owner's own address
    behind the same proxy, slows the attacker to one guess per ``cap`` while the owner gets
    in after a short delay. A success forgets only the failures of that account from that
    client and browser: signing in to one's own account does not reset the count of guesses
    at another.
    """

    def __init__(
        self,
        free: int = 10,
        base: float = 1.0,
        cap: float = 900.0,
        usual_cap: float = 2.0,
        window: float = 86400.0,
        keys: int = 10_000,
    ) -> None:
        self.free, self.base, self.cap, self.usual_cap = free, base, cap, usual_cap
        self.window = window
        self.keys = keys  # per table: the oldest are forgotten beyond this (memory bound)
        self._lock = threading.Lock()
        self._tables: dict[str, OrderedDict[str, list[Attempt]]] = {
            "client": OrderedDict(),
            "account": OrderedDict(),
            "device": OrderedDict(),
        }

    def attempt(self, client: str, account: str, device: str | None = None) -> Attempt | float:
        """Let an attempt through (and count it) or say how many seconds to wait."""
        now = time.monotonic()
        keys = {"client": client, "account": account, "device": device}
        with self._lock:
            failures = {
                table: self._failures(table, key, now) for table, key in keys.items() if key
            }
            usual = device is not None and len(failures["device"]) < self.free
            cap = self.usual_cap if usual else self.cap
            wait = max(self._wait(failures[table], now, cap) for table in ("client", "account"))
            if wait > 0:
                return wait
            attempt = Attempt(client, account, device)
            for table, key in keys.items():
                if key:
                    self._add(table, key, attempt)
            return attempt

    def failed(self, attempt: Attempt) -> None:
        """The attempt's password was checked and wrong: its back-off runs from now."""
        with self._lock:
            attempt.failed_at = time.monotonic()

    def succeeded(self, attempt: Attempt) -> None:
        """The attempt was right: forget the failures of its account from its client and
        browser; the failures at other accounts, and those of other browsers at the same
        address, stay."""
        same = (attempt.client, attempt.account, attempt.device)
        with self._lock:
            for name, key in (
                ("client", attempt.client),
                ("account", attempt.account),
                ("device", attempt.device),
            ):
                table = self._tables[name]
                if key is None or key not in table:
                    continue
                kept = [a for a in table[key] if (a.client, a.account, a.device) != same]
                if kept:
                    table[key] = kept
                else:
                    del table[key]

    def _failures(self, name: str, key: str, now: float) -> list[Attempt]:
        table = self._tables[name]
        failures = [a for a in table.get(key, []) if a.time > now - self.window]
        if failures:
            table[key] = failures
        else:
            table.pop(key, None)
        return failures

    def _wait(self, failures: list[Attempt], now: float, cap: float) -> float:
        if len(failures) < self.free:
            return 0.0
        delay = min(self.base * 2 ** (len(failures) - self.free), cap)
        last = max(now if a.failed_at is None else a.failed_at for a in failures[-self.free :])
        return max(0.0, last + delay - now)

    def _add(self, name: str, key: str, attempt: Attempt) -> None:
        table = self._tables[name]
        table.setdefault(key, []).append(attempt)
        table.move_to_end(key)
        while len(table) > self.keys:
            table.popitem(last=False)
