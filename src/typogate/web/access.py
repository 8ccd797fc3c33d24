"""Who may do what: sign-in, roles and CSRF checks, as FastAPI dependencies.

Every page and API route depends on :func:`signed_in` (``/health`` alone does not). Every
request that changes something also depends on :func:`csrf_checked`: the session's token
must come back in the ``csrf_token`` form field or the ``X-CSRF-Token`` header. Forms used
before sign-in (the login form, a sender's release page) carry a token that must match
the ``typogate_form`` cookie (double submit).
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import defaultdict, deque
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response

from typogate.errors import TypogateError
from typogate.store.accounts import SignedIn
from typogate.web.context import WebContext

SESSION_COOKIE = "typogate_session"
FORM_COOKIE = "typogate_form"


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
    """A refused sign-in: the HTTP status and the sentence to show."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def sign_in(
    request: Request, ctx: WebContext, username: str, password: str, response: Response
) -> str:
    """Check the password under the sign-in throttle, open a session and set its cookie on
    ``response``; returns the session's cookie value. Raises :class:`SignInRefused`."""
    throttle: LoginThrottle = request.app.state.login_throttle
    client = request.client.host if request.client else "?"
    if not throttle.allowed(client):
        raise SignInRefused(429, "Too many failed sign-ins. Wait a few minutes.")
    name = ctx.accounts.authenticate(username, password)
    if name is None:
        throttle.failed(client)
        raise SignInRefused(401, "Wrong account name or password.")
    throttle.succeeded(client)
    token = ctx.accounts.open_session(name)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(ctx.config.web.session_hours * 3600),
        httponly=True,
        samesite="strict",
        secure=ctx.config.web.secure_cookies,
        path="/",
    )
    return token


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


class LoginThrottle:
    """At most ``attempts`` failed sign-ins per client address in ``window`` seconds."""

    def __init__(self, attempts: int = 10, window: float = 600.0) -> None:
        self.attempts = attempts
        self.window = window
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def allowed(self, client: str) -> bool:
        failures = self._failures[client]
        while failures and failures[0] < time.monotonic() - self.window:
            failures.popleft()
        return len(failures) < self.attempts

    def failed(self, client: str) -> None:
        self._failures[client].append(time.monotonic())

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)
