"""The web interface's server: uvicorn on a thread of its own, with its own event loop, so
a slow page never delays a verdict.

Its connections are bounded (``web_connections``, ``web_request_seconds`` in ``[limits]``):
the port may be open to senders for their release links, and under ``serve`` it shares the
process, and so its open files, with the policy service. uvicorn alone keeps a connection
that never sends a request for as long as the client likes, so idle connections could use
up the open files and leave Postfix's requests unaccepted (then Postfix's
``default_action`` decides: fail-open lets the typo leave).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from typing import TYPE_CHECKING

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from typogate.errors import CannotListen
from typogate.gateway.activation import PassedSockets
from typogate.gateway.admission import (
    ALONE,
    LISTEN_BACKLOG,
    Admission,
    Neighbours,
    client_address,
)
from typogate.gateway.controller import LoopProbe
from typogate.web.app import create_app
from typogate.web.context import WebContext

if TYPE_CHECKING:
    from typogate.runtime import Runtime

log = logging.getLogger(__name__)

_FULL = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Length: 0\r\n"
    b"Connection: close\r\n\r\n"
)


def bounded_http(admission: Admission, request_seconds: float) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol within ``admission``'s bounds: a connection past them is
    answered ``503`` and closed, and one that sends no request within ``request_seconds``,
    at first or after an answer, is closed (uvicorn's own keep-alive timeout, 5 s, usually
    closes it first)."""

    class BoundedH11(H11Protocol):
        admitted: str | None = None  # the client's address, once let in
        _awaiting: asyncio.TimerHandle | None = None  # closes it if no request starts

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            client = client_address(transport.get_extra_info("peername"))
            if admission.admit(client) is not None:
                transport.write(_FULL)
                transport.close()
                return
            self.admitted = client
            super().connection_made(transport)
            self._await_request(None)

        def on_response_complete(self) -> None:
            answered = self.cycle  # before uvicorn starts a pipelined request's cycle
            super().on_response_complete()
            # Any data disarms uvicorn's keep-alive timer, and never arms it again: the rest
            # of a body answered 413 (body_limit) would keep an idle connection for good.
            self._await_request(answered)

        def _await_request(self, answered: object) -> None:
            """Close the connection unless a request after ``answered`` (None: the first)
            starts within ``request_seconds``."""
            if self._awaiting is not None:
                self._awaiting.cancel()
            self._awaiting = asyncio.get_running_loop().call_later(
                request_seconds, self._no_request, answered
            )

        def _no_request(self, answered: object) -> None:
            if self.cycle is answered and not self.transport.is_closing():
                self.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            if self.admitted is None:
                return
            if self._awaiting is not None:
                self._awaiting.cancel()
            admission.leave(self.admitted)
            super().connection_lost(exc)

    return BoundedH11


class WebServer:
    """The dashboard and REST API of ``runtime`` on ``host:port`` (a controller service)."""

    def __init__(
        self, runtime: Runtime, host: str, port: int, *, beside: Neighbours = ALONE
    ) -> None:
        """``beside``: the process's other listeners (``serve``'s policy service and
        milter), whose sessions its open-file limit must fit too."""
        self.what = "the web interface"
        self.host, self.port = host, port
        self.address = f"{host}:{port}"
        self._sockets: list[socket.socket] | None = None  # None: uvicorn binds the address
        app = create_app(runtime)
        # Said once at start-up, where the runtime logs, and on the admin's dashboard.
        warning = WebContext.of(runtime).release_link_warning(host)
        app.state.release_link_warning = warning
        if warning:
            log.warning("%s", warning)
        limits = runtime.config.limits
        # A connection holds one descriptor (the store's are the runtime's, shared).
        admission = Admission.within_open_files(
            "web", limits.web_connections, files_per_session=1, beside=beside
        )
        self._server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                http=bounded_http(admission, limits.web_request_seconds),
                # Connections accepted in one go, refused ones included: within what the
                # open-file limit was fitted for.
                backlog=LISTEN_BACKLOG,
                log_config=None,
                access_log=False,
                # uvicorn would take X-Forwarded-For from loopback as the client's address;
                # the app reads it itself, from web.trusted_proxies only (web.access).
                proxy_headers=False,
            )
        )
        self._thread = threading.Thread(target=self._run, name="web", daemon=True)
        self._probe: LoopProbe | None = None

    def inherit(self, passed: PassedSockets) -> None:
        """Serve on the socket systemd passed for this address, if there is one."""
        if (sock := passed.take(self.host, self.port, self.what)) is not None:
            self._sockets = [sock]

    def _run(self) -> None:
        async def serve() -> None:
            self._probe = LoopProbe(asyncio.get_running_loop())
            await self._server.serve(sockets=self._sockets)

        asyncio.run(serve())  # uvicorn's Server.run, with the loop known to the watchdog

    def answering(self) -> bool:
        """Whether uvicorn's loop ran the watchdog's last look (:class:`LoopProbe`)."""
        return self._probe is not None and self._probe.answering()

    def start(self) -> None:
        """Serve; raises :class:`CannotListen` when the address cannot be bound."""
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():  # uvicorn logged why (address in use, say)
                raise CannotListen(self.what, self.address, "see the error above")
            time.sleep(0.02)
        log.info("web interface on http://%s", self.address)

    def stop(self) -> None:
        """Finish the requests in flight, then stop."""
        self._server.should_exit = True
        self._thread.join(timeout=10)
