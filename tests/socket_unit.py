"""What systemd does for a ``.socket`` unit, for the tests and the bench: it opens the
listening sockets, keeps them open while the service's processes come and go, and passes
them to each process it starts as ``sd_listen_fds(3)`` says (descriptors from 3 on,
``LISTEN_FDS``, and ``LISTEN_PID`` naming that process)."""

from __future__ import annotations

import fcntl
import socket
import subprocess
from pathlib import Path

# Where the sockets wait before the shell moves them to 3, 4, ...: above any of those.
_PARKED = 20


class SocketUnit:
    """Listening sockets on 127.0.0.1 ports, and the processes started with them."""

    def __init__(self, ports: list[int]) -> None:
        self.sockets = []
        for port in ports:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen(128)
            self.sockets.append(sock)
        self._parked = [fcntl.fcntl(s.fileno(), fcntl.F_DUPFD, _PARKED) for s in self.sockets]

    def start(self, command: list[str], log: Path) -> subprocess.Popen[bytes]:
        """Start ``command`` with the sockets passed, its output appended to ``log``."""
        moves = " ".join(f"{3 + n}<&{fd}" for n, fd in enumerate(self._parked))
        # $$ is the shell's pid, which exec hands on to the command (bash: dash takes only
        # one-digit descriptors in a redirection).
        script = f'export LISTEN_FDS={len(self._parked)} LISTEN_PID=$$; exec "$@" {moves}'
        with open(log, "ab") as out:
            return subprocess.Popen(
                ["bash", "-c", script, "bash", *command],
                pass_fds=self._parked,
                stdout=out,
                stderr=out,
            )

    def close(self) -> None:
        for fd in self._parked:
            socket.close(fd)
        for sock in self.sockets:
            sock.close()
