"""The gateway's lifecycle: start the listeners, wait for a stop signal, stop them.

Listeners run on threads of their own (an asyncio loop each for the policy service and the
proxy, uvicorn's for the web interface); the main thread waits for SIGTERM or SIGINT, or
runs libmilter, which owns the main thread and returns on those signals itself. A listener
whose address is taken stops the start with :class:`~typogate.errors.CannotListen`, and
whatever started before it is stopped again.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from typogate.errors import CannotListen

log = logging.getLogger(__name__)

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


class Service(Protocol):
    """Something the controller starts before serving and stops after."""

    def start(self) -> None:
        """Start serving; raises :class:`CannotListen` when it cannot."""

    def stop(self) -> None:
        """Stop serving; returns when stopped (or given up on)."""


class AsyncioListener:
    """An asyncio server on a thread and event loop of its own."""

    def __init__(
        self, what: str, address: str, open_server: Callable[[], Awaitable[asyncio.AbstractServer]]
    ) -> None:
        self.what = what
        self.address = address
        self._open_server = open_server
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name=what, daemon=True)
        self._started = threading.Event()
        self._failure: OSError | None = None

    def start(self) -> None:
        self._thread.start()
        self._started.wait()
        if self._failure is not None:
            raise CannotListen.of(self.what, self.address, self._failure)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            server = self._loop.run_until_complete(self._open_server())
        except OSError as error:
            self._failure = error
            return
        finally:
            self._started.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            self._loop.run_until_complete(server.wait_closed())


def block_stop_signals() -> None:
    """Leave SIGTERM, SIGINT and SIGHUP to the one thread that waits for them (this one, or
    libmilter's signal thread). Call before any other thread starts: threads inherit the
    blocked set, and one that did not would die of the signal instead, skipping the
    store's last write."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def serve(
    services: Sequence[Service],
    foreground: Callable[[], None] | None = None,
    reload: Callable[[], None] | None = None,
) -> None:
    """Start ``services`` in order, serve until a stop signal, stop them in reverse order.

    ``foreground`` runs on this thread instead of waiting for the signal (libmilter, which
    returns on SIGTERM or SIGINT itself). Without it, SIGHUP calls ``reload`` (when given)
    and serving goes on. :func:`block_stop_signals` must have been called before any thread
    started. Raises :class:`CannotListen` when a service cannot start.
    """
    started: list[Service] = []
    try:
        for service in services:
            service.start()
            started.append(service)
        if foreground is not None:
            foreground()
        else:
            while (received := signal.sigwait(STOP_SIGNALS)) == signal.SIGHUP and reload:
                reload()
            log.info("%s: stopping", signal.Signals(received).name)
    finally:
        for service in reversed(started):
            service.stop()
