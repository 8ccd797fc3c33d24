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
"""

from __future__ import annotations

import ipaddress
import os
import socket

from typogate.errors import CannotListen

_FIRST = 3  # SD_LISTEN_FDS_START
_ENVIRONMENT = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")
_ANY = {ipaddress.ip_address("0.0.0.0"), ipaddress.ip_address("::")}


class PassedSockets:
    """The listening sockets systemd passed to this process, until listeners take them."""

    def __init__(self, sockets: list[socket.socket]) -> None:
        self._left = list(sockets)

    @classmethod
    def from_environment(cls) -> PassedSockets:
        """The sockets passed to this process (none when it was started without a
        ``.socket`` unit). Takes ``LISTEN_*`` out of the environment, so that no process
        typogate starts reads them as its own. Raises :class:`CannotListen` for a
        descriptor that is not a listening TCP socket."""
        pid, count = (os.environ.get(name) for name in _ENVIRONMENT[:2])
        for name in _ENVIRONMENT:
            os.environ.pop(name, None)
        if pid is None or count is None or pid != str(os.getpid()):
            return cls([])  # not activated, or the variables were meant for another process
        if not count.isdigit():
            raise CannotListen("typogate", f"LISTEN_FDS={count!r}", "not a number of sockets")
        return cls([_listening(fd) for fd in range(_FIRST, _FIRST + int(count))])

    def take(self, host: str, port: int) -> socket.socket | None:
        """The passed socket bound to ``host:port`` (the wildcard addresses of IPv4 and
        IPv6 match each other: ``ListenStream=25`` is ``[::]:25``), if there is one."""
        for sock in self._left:
            bound = sock.getsockname()
            if bound[1] == port and _same_host(bound[0], host):
                self._left.remove(sock)
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
