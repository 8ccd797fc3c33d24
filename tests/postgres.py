"""A real PostgreSQL server for tests and benches: initdb in a temporary folder, started on
a loopback port and stopped by its PID."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from ports import free_port, wait_for_port


def postgres_binary(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else None


class PostgresServer:
    def __init__(self, data: Path | None = None, *initdb_options: str) -> None:
        """A new cluster; its data directory is ``data`` when given (a small disk, say)."""
        self.root = Path(tempfile.mkdtemp(prefix="typogate-pg-", dir="/tmp"))
        self.root.chmod(0o755)
        self.data = data or self.root / "data"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        shutil.chown(self.root, "postgres", "postgres")
        if data is not None:
            data.mkdir()
            shutil.chown(data, "postgres", "postgres")
        self._as_postgres(
            [
                postgres_binary("initdb"),
                "-D",
                str(self.data),
                "--auth=trust",
                "-U",
                "postgres",
                "--no-sync",
                *initdb_options,
            ]
        )

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, command: list[str | None]) -> None:
        subprocess.run(
            command,
            check=True,
            capture_output=True,
            timeout=120,
            user="postgres",
            group="postgres",
            cwd=self.root,
        )

    def start(self) -> None:
        # Started as the postgres user directly, so this PID is the server's own.
        self.process = subprocess.Popen(
            [
                postgres_binary("postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-h",
                "127.0.0.1",
                "-k",
                str(self.root),
                "-c",
                "fsync=off",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            user="postgres",
            group="postgres",
            cwd=self.root,
        )
        try:
            wait_for_port(self.port, timeout=30)
        except TimeoutError:
            raise RuntimeError(f"postgres did not start on port {self.port}") from None
        time.sleep(0.3)  # listening before it accepts logins

    def freeze(self, sign: signal.Signals = signal.SIGSTOP) -> None:
        """Stop the server and every backend it started (as a server stuck on its disk
        stops answering, its connections open); ``SIGCONT`` lets them go on."""
        assert self.process is not None
        children = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True, timeout=10
        )
        for pid in [self.process.pid, *map(int, children.stdout.split())]:
            os.kill(pid, sign)

    def thaw(self) -> None:
        """Let a frozen server go on."""
        self.freeze(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGINT)  # postgres: fast shutdown
            self.process.wait(timeout=30)
        self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
