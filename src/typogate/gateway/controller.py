"""The gateway's lifecycle: start the listeners, wait for a signal, reload or stop them.

Listeners run on threads of their own (an asyncio loop each for the policy service and the
proxy, uvicorn's for the web interface, libmilter's loop for the milter); the main thread
waits for signals. SIGHUP reloads the configuration; SIGTERM and SIGINT stop the
listeners, at once. A listener whose address is taken stops the start with
:class:`~typogate.errors.CannotListen`, and whatever started before it is stopped again.
A listener takes the socket systemd passed for its address, if any (:mod:`.activation`),
and binds its address itself otherwise. The service manager is told when every listener
answers, and, while the event loops of the listeners that have one still run their
callbacks, that they do (:mod:`.readiness`, :class:`Watchdog`).

libmilter has a signal thread of its own that waits for SIGHUP, SIGTERM and SIGINT and
stops the milter on any of them, SIGHUP included: a reload would stop the milter. So the
main thread alone takes the signals, with handlers: they are blocked before any thread
starts (:func:`block_stop_signals`), then unblocked on the main thread before the
listeners start, and every thread a listener starts blocks them first
(:func:`leave_signals_to_main_thread`), libmilter's own loop and so its signal thread
included. Linux gives a signal sent to the process to its main thread whenever that thread
accepts it and has none waiting, so libmilter's signal thread does not see one once it
sleeps in ``sigwait``: the milter's start waits for that, and serve starts the milter
before any other listener (tests/gateway/test_reload.py sends SIGHUPs to serve as soon as
it answers, and one reload after another). A signal within the milter's first
milliseconds, or another within the moment the last one waits (a burst, on a busy
machine), can still reach libmilter's thread: then the milter stops and so does typogate,
with exit status 1 and a line that says so, for the service manager to restart it.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from types import FrameType
from typing import Protocol, runtime_checkable

from typogate.errors import CannotListen
from typogate.gateway.activation import PassedSockets
from typogate.gateway.readiness import ServiceManager

log = logging.getLogger(__name__)

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


class Service(Protocol):
    """Something the controller starts before serving and stops after."""

    def start(self) -> None:
        """Start serving; raises :class:`CannotListen` when it cannot."""

    def stop(self) -> None:
        """Stop serving; returns when stopped (or given up on)."""


@runtime_checkable
class Listener(Service, Protocol):
    """A service that listens on a TCP address, and can be handed its socket instead."""

    def inherit(self, passed: PassedSockets) -> None:
        """Take the socket ``passed`` holds for this listener's address, if there is one:
        :meth:`start` then serves on it rather than binding the address."""


@runtime_checkable
class Watched(Service, Protocol):
    """A service on an event loop, which the watchdog looks at."""

    what: str

    def answering(self) -> bool:
        """Whether its loop ran what the last look posted to it (and post another)."""


class LoopProbe:
    """Whether an event loop still runs its callbacks: each look posts one to it, and the
    next look finds whether it ran. A loop stuck in one call (a lock never released, a C
    call that never returns) answers no more, and neither do its clients."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._ran = threading.Event()
        self._ran.set()  # the first look finds the loop as it starts: running

    def answering(self) -> bool:
        """Whether the callback the last call posted has run; posts the next one."""
        ran = self._ran.is_set()
        self._ran.clear()
        try:
            self._loop.call_soon_threadsafe(self._ran.set)
        except RuntimeError:  # closed: it runs nothing any more
            return False
        return ran


class Watchdog:
    """Tells the service manager that the listeners still answer, twice in each interval
    it asks for (``WatchdogSec=``), as long as every event loop ran the last look's
    callback. When one did not, it says which, and tells nothing: systemd then ends the
    process and starts it again, and the clients wait in the socket it holds. (The
    milter's threads are libmilter's: the watchdog does not see them.)"""

    def __init__(self, manager: ServiceManager, services: Sequence[Service]) -> None:
        self._manager = manager
        self._watched = [service for service in services if isinstance(service, Watched)]
        self._every = (manager.watchdog_seconds or 0) / 2
        self._due = time.monotonic()

    def look(self) -> None:
        """Tell the manager, when due and every loop answers."""
        if not self._every or time.monotonic() < self._due:
            return
        self._due = time.monotonic() + self._every
        stuck = [service.what for service in self._watched if not service.answering()]
        if stuck:
            log.error(
                "watchdog: %s ran nothing for %.0f s; not telling systemd all is well",
                ", ".join(stuck),
                self._every,
            )
            return
        self._manager.alive()


OpenServer = Callable[[socket.socket | None], Awaitable[asyncio.AbstractServer]]


class AsyncioListener:
    """An asyncio server on a thread and event loop of its own.

    ``open_server`` starts it on the socket given, or binds ``host:port`` when given None.
    """

    def __init__(self, what: str, host: str, port: int, open_server: OpenServer) -> None:
        self.what = what
        self.host, self.port = host, port
        self.address = f"{host}:{port}"
        self._open_server = open_server
        self._socket: socket.socket | None = None
        self._loop = asyncio.new_event_loop()
        self._probe = LoopProbe(self._loop)
        self._thread = threading.Thread(target=self._serve, name=what, daemon=True)
        self._started = threading.Event()
        self._failure: OSError | None = None

    def inherit(self, passed: PassedSockets) -> None:
        self._socket = passed.take(self.host, self.port, self.what)

    def start(self) -> None:
        self._thread.start()
        self._started.wait()
        if self._failure is not None:
            raise CannotListen.of(self.what, self.address, self._failure)

    def answering(self) -> bool:
        return self._probe.answering()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def _serve(self) -> None:
        leave_signals_to_main_thread()
        asyncio.set_event_loop(self._loop)
        try:
            server = self._loop.run_until_complete(self._open_server(self._socket))
        except OSError as error:
            self._failure = error
            return
        finally:
            self._started.set()
        try:
            self._loop.run_forever()
        finally:
            # Stops listening at once. Not wait_closed(): from Python 3.12 it waits for every
            # client to leave, and Postfix keeps its policy connections open while idle (a
            # stop took the full 10 s of join's timeout). Open connections end with the process.
            server.close()


def block_stop_signals() -> None:
    """Block SIGTERM, SIGINT and SIGHUP on this thread and every thread it starts from now
    on; :func:`serve` takes them on the main thread alone. Call before any other thread
    starts: threads inherit the blocked set, and one that did not would die of the signal
    (or, libmilter's, stop the milter on a SIGHUP) instead."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def serve(services: Sequence[Service], reload: Callable[[], object] | None = None) -> None:
    """Start ``services`` in order, serve until SIGTERM or SIGINT, stop them in reverse order.

    SIGHUP calls ``reload`` (when given) and serving goes on. :func:`block_stop_signals`
    must have been called before any thread started, and every thread a service starts
    calls :func:`leave_signals_to_main_thread` first. Each listener first takes the socket
    systemd passed for its address, if any; systemd is told when all of them answer, when
    a reload begins and ends, and when they stop, and its watchdog is kept fed while they
    answer. Raises :class:`CannotListen` when a service cannot start, or a passed socket
    is for no listener's address.
    """
    manager = ServiceManager.from_environment()
    passed = PassedSockets.from_environment()
    for service in services:
        if isinstance(service, Listener):
            service.inherit(passed)
    passed.refuse_the_rest()
    started: list[Service] = []
    asked_at: float | None = None  # when a stop signal came
    with _signals_on_this_thread() as received:
        try:
            for service in services:
                service.start()
                started.append(service)
            manager.ready()
            watchdog = Watchdog(manager, started)
            while (signum := _next(received, watchdog.look)) == signal.SIGHUP:
                if reload is None:
                    log.info("SIGHUP: nothing to reload")
                else:
                    log.info("SIGHUP: reloading the configuration")
                    manager.reloading()
                    try:
                        _while_looking(reload, watchdog)
                    finally:
                        manager.ready()
            log.info("%s: stopping", signal.Signals(signum).name)
            asked_at = time.monotonic()
            manager.stopping()
        finally:
            for service in reversed(started):
                service.stop()
            if asked_at is not None:  # the log's last word: every listener has closed
                log.info("stopped in %.1f s", time.monotonic() - asked_at)


def _while_looking(work: Callable[[], object], watchdog: Watchdog) -> None:
    """Run ``work`` (a reload) on a thread of its own while the watchdog goes on looking:
    a reload builds a new Guard, which takes as long as a start (seconds; tens of them for
    a store with many relationships), and the listeners answer with the old one meanwhile.
    Signals wait for it, as they did when it ran here; what it raises is raised here."""
    with ThreadPoolExecutor(1, "reload", initializer=leave_signals_to_main_thread) as thread:
        reloading = thread.submit(work)
        while not wait([reloading], timeout=0.5).done:
            watchdog.look()
        reloading.result()


def leave_signals_to_main_thread() -> None:
    """Call first on a thread a service starts: the stop signals stay the main thread's
    (and libmilter's signal thread, when this thread runs libmilter, inherits the block)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def _next(received: queue.SimpleQueue[int], between: Callable[[], None]) -> int:
    # Not one endless wait: should a signal's handler have run on another thread (one a
    # library started, such as uvicorn's), the main thread would sleep through it.
    # Waking twice a second, it runs the Python handler on its next instruction, and
    # ``between`` (the watchdog's look).
    while True:
        try:
            return received.get(timeout=0.5)
        except queue.Empty:
            between()


@contextmanager
def _signals_on_this_thread() -> Iterator[queue.SimpleQueue[int]]:
    """The stop signals, as they come, from handlers on this (the main) thread."""
    received: queue.SimpleQueue[int] = queue.SimpleQueue()  # put() is safe in a handler

    def handle(signum: int, frame: FrameType | None) -> None:
        received.put(signum)

    previous = {signum: signal.signal(signum, handle) for signum in STOP_SIGNALS}
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    try:
        yield received
    finally:
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
