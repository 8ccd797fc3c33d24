"""What typogate tells the service manager that started it: systemd's notify protocol
(``sd_notify(3)``), for units of ``Type=notify`` with a ``WatchdogSec=``.

systemd names a datagram socket in ``NOTIFY_SOCKET`` (a path, or ``@`` for the abstract
namespace) and reads ``name=value`` lines from it: ``READY=1`` once every listener
answers (so ``systemctl start`` and ``restart`` wait for it, and say so when the start
fails), ``RELOADING=1`` while SIGHUP's reload runs, ``STOPPING=1`` on the way out, and
``WATCHDOG=1`` at least once every ``WATCHDOG_USEC`` microseconds: when it stops coming,
systemd ends the process (``WatchdogSignal=``, SIGABRT) and, with ``Restart=``, starts it
again. Without ``NOTIFY_SOCKET`` (started by hand, or by another manager) nothing is sent.

Nothing here stops mail: a manager that cannot be told is logged, once, and typogate
serves on.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


class ServiceManager:
    """The service manager that started this process, as far as it asked to be told."""

    def __init__(self, address: str | None, watchdog_seconds: float | None) -> None:
        """``address``: ``NOTIFY_SOCKET``'s; ``watchdog_seconds``: how often it expects
        ``WATCHDOG=1`` at the latest (None: it does not)."""
        self._address = "\0" + address[1:] if address and address.startswith("@") else address
        self.watchdog_seconds = watchdog_seconds if address else None
        self._failed = False

    @classmethod
    def from_environment(cls) -> ServiceManager:
        """The manager ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID`` name (a
        watchdog meant for another process, one typogate was started by, is not ours)."""
        interval = os.environ.get("WATCHDOG_USEC", "")
        owner = os.environ.get("WATCHDOG_PID", str(os.getpid()))
        watchdog = None
        if interval.isdigit() and int(interval) > 0 and owner == str(os.getpid()):
            watchdog = int(interval) / 1e6
        return cls(os.environ.get("NOTIFY_SOCKET") or None, watchdog)

    def ready(self) -> None:
        """Every listener answers."""
        self._tell("READY=1")

    def reloading(self) -> None:
        """A reload (SIGHUP) has begun; :meth:`ready` says it ended."""
        self._tell("RELOADING=1")

    def stopping(self) -> None:
        """The listeners are stopping."""
        self._tell("STOPPING=1")

    def alive(self) -> None:
        """The listeners still answer (the watchdog's keep-alive)."""
        self._tell("WATCHDOG=1")

    def _tell(self, message: str) -> None:
        if self._address is None:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(self._address)
                sock.sendall(message.encode())
        except OSError as error:
            if not self._failed:  # the next message would fail the same way: said once
                log.warning("cannot tell the service manager %s: %s", message, error)
            self._failed = True
