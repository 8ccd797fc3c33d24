"""Listening sockets handed over by the service manager: systemd's socket activation.

With a ``.socket`` unit, systemd opens the listening sockets itself and passes them to each
process of the service it starts (``sd_listen_fds(3)``: descriptors from 3 on, as many as
``LISTEN_FDS`` says, for the process ``LISTEN_PID`` names). The sockets outlive the
process: while typogate restarts, Postfix's connections wait in the socket's queue instead
of being refused, and the new process answers them; and an unprivileged process can serve
a privileged port (the sink's 25).

Each listener takes the socket bound to its own address (the configuration's, or
``--listen``); one that was passed none binds its address itself. A socket no listener
takes stops the start: nobody would ever accept on it, and every client would wait for its
own timeout (Postfix's ``smtpd_policy_service_timeout``, 100 s) instead of being refused.
For the same reason a process that leaves without serving (a configuration it refuses, a
store it cannot open) first closes the connections waiting in the sockets
(:func:`refuse_waiting`): while systemd starts one such process after another, each
client is refused within seconds and Postfix applies its ``default_action``, as it does
when nothing listens.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
from typing import Any

from typogate.errors import CannotListen

log = logging.getLogger(__name__)

_FIRST = 3  # SD_LISTEN_FDS_START
_ANY = {ipaddress.ip_address("0.0.0.0"), ipaddress.ip_address("::")}


class PassedSockets:
    """The listening sockets systemd passed to this process, until listeners take them."""

    def __init__(self, sockets: list[socket.socket]) -> None:
        self._left = list(sockets)

    @classmethod
    def from_environment(cls) -> PassedSockets:
        """The sockets passed to this process (none when it was started without a
        ``.socket`` unit). Raises :class:`CannotListen` for a descriptor that is not a
        listening TCP socket. (``LISTEN_*`` stay in the environment: a process typogate
        starts has another pid than ``LISTEN_PID`` names, so it takes none for its own.)"""
        count = _passed_count()
        if count is not None and not count.isdigit():
            raise CannotListen("typogate", f"LISTEN_FDS={count!r}", "not a number of sockets")
        return cls([_listening(fd) for fd in _descriptors(count)])

    def take(self, host: str, port: int, listener: str) -> socket.socket | None:
        """The passed socket bound to ``host:port`` (the wildcard addresses of IPv4 and
        IPv6 match each other: ``ListenStream=25`` is ``[::]:25``), if there is one, for
        ``listener`` to serve (said in the log)."""
        for sock in self._left:
            bound = sock.getsockname()
            if bound[1] == port and _same_host(bound[0], host):
                self._left.remove(sock)
                log.info("%s: serving the socket systemd passed for %s:%d", listener, host, port)
                return sock
        return None

    def refuse_the_rest(self) -> None:
        """Raise :class:`CannotListen` if a passed socket was taken by no listener."""
        if self._left:
            raise CannotListen(
                "typogate",
                ", ".join(_address(sock) for sock in self._left),
                "systemd passed a socket for it, and no listener here is configured for "
                "that address: make the .socket unit's ListenStream= the address in the "
                "configuration (the milter opens its own socket: leave it out of the unit)",
            )


def server_arguments(host: str, port: int, sock: socket.socket | None) -> dict[str, Any]:
    """Where asyncio's ``create_server`` (or ``start_server``) serves: on ``sock``, the
    socket taken for ``host:port``, or on ``host:port`` bound afresh when there is none."""
    return {"host": host, "port": port} if sock is None else {"sock": sock}


def refuse_waiting() -> int:
    """Close the connections waiting in the listening sockets systemd passed to this
    process, for a process that leaves without serving them: their clients are refused now
    and try again (Postfix after 1 s) rather than each waiting for its own timeout. Returns
    how many it closed."""
    closed = 0
    for fd in _descriptors(_passed_count()):
        try:
            sock = socket.socket(fileno=fd)
        except OSError:
            continue  # closed already, or no socket now
        try:
            if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                continue  # the descriptor was closed and reused for something else
            sock.setblocking(False)  # asyncio sets it so too: the next process is not bothered
            while True:
                try:
                    connection, _ = sock.accept()
                except (BlockingIOError, InterruptedError):
                    break
                except ConnectionAbortedError:
                    continue  # gone before it was accepted
                connection.close()
                closed += 1
        except OSError:
            continue
        finally:
            sock.detach()  # the descriptor stays systemd's to pass on
    return closed


def _passed_count() -> str | None:
    """``LISTEN_FDS`` when it is meant for this process (``LISTEN_PID``), else None."""
    count = os.environ.get("LISTEN_FDS")
    return count if os.environ.get("LISTEN_PID") == str(os.getpid()) else None


def _descriptors(count: str | None) -> range:
    return range(_FIRST, _FIRST + int(count)) if count and count.isdigit() else range(0)


def _listening(fd: int) -> socket.socket:
    try:
        sock = socket.socket(fileno=fd)
    except OSError as error:
        raise CannotListen.of("typogate", f"descriptor {fd} from systemd", error) from None
    # systemd passes them inheritable; nothing typogate starts (postsuper, the store's
    # writer) should keep one open.
    sock.set_inheritable(False)
    if (
        sock.type != socket.SOCK_STREAM
        or sock.family not in (socket.AF_INET, socket.AF_INET6)
        or not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    ):
        raise CannotListen(
            "typogate",
            f"descriptor {fd} from systemd",
            "not a listening TCP socket (the .socket unit needs ListenStream= and Accept=no)",
        )
    return sock


def _same_host(bound: str, configured: str) -> bool:
    try:
        here, there = ipaddress.ip_address(bound), ipaddress.ip_address(configured)
    except ValueError:  # a name, such as localhost: what it resolves to
        try:
            found = socket.getaddrinfo(configured, None, type=socket.SOCK_STREAM)
        except socket.gaierror:
            return False
        return any(_same_host(bound, str(entry[4][0])) for entry in found)
    if isinstance(here, ipaddress.IPv6Address) and here.ipv4_mapped is not None:
        here = here.ipv4_mapped
    return here == there or (here in _ANY and there in _ANY)


def _address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
