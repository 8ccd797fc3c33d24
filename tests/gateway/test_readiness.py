"""What typogate tells systemd (``Type=notify``, ``WatchdogSec=``): ready once every
listener answers, reloading and ready again on SIGHUP, stopping on SIGTERM, and the
watchdog's keep-alive while every event loop runs, none while one hangs. The test is the
service manager: it binds the ``NOTIFY_SOCKET`` datagram socket and reads what comes."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from mta import TYPOGATE, policy_answer
from ports import free_port

from typogate.gateway.controller import AsyncioListener, Watchdog
from typogate.gateway.readiness import ServiceManager


class Manager:
    """The service manager's end of NOTIFY_SOCKET: each datagram, with when it came."""

    def __init__(self, path: Path | str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))

    def next(self, timeout: float = 60) -> tuple[float, str]:
        self.sock.settimeout(timeout)
        message = self.sock.recv(4096).decode()
        return time.monotonic(), message

    def until(self, wanted: str, timeout: float = 60) -> list[str]:
        """Every message up to and with ``wanted``."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while not seen or seen[-1] != wanted:
            seen.append(self.next(max(0.01, deadline - time.monotonic()))[1])
        return seen

    def close(self) -> None:
        self.sock.close()


def _start(tmp_path: Path, args: list[str], watchdog_usec: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, NOTIFY_SOCKET=str(tmp_path / "notify"))
    env["WATCHDOG_USEC"] = str(watchdog_usec)
    log = open(tmp_path / "typogate.log", "wb")  # noqa: SIM115 (closed with the process)
    process = subprocess.Popen([TYPOGATE, *args], stdout=log, stderr=log, env=env)
    log.close()
    return process


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=15)


def test_serve_tells_systemd_ready_reloading_alive_and_stopping(tmp_path):
    """Before: nothing was told (the units were Type=exec): systemctl start and restart
    returned before the index was built, and said nothing of a start that then failed."""
    policy_port, web_port = free_port(), free_port()
    config = tmp_path / "typogate.toml"
    config.write_text(
        f'[gateway]\npolicy_listen = "127.0.0.1:{policy_port}"\n'
        f'[web]\nlisten = "127.0.0.1:{web_port}"\n'
    )
    manager = Manager(tmp_path / "notify")
    args = ["serve", "--no-milter", "--config", str(config)]
    process = _start(tmp_path, [*args, "--db", f"sqlite:///{tmp_path / 't.db'}"], 1_000_000)
    try:
        assert manager.until("READY=1") == ["READY=1"]
        # Ready means answering: no wait for the port here.
        assert "army.mil" in policy_answer(policy_port, "john@army.ml")
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/health", timeout=10) as page:
            assert page.status == 200
        # Twice a second (half of WATCHDOG_USEC): the policy service's and the web
        # interface's loops both ran the last look.
        beats = [manager.next(5) for _ in range(4)]
        assert {message for _, message in beats} == {"WATCHDOG=1"}
        assert beats[-1][0] - beats[0][0] < 3
        os.kill(process.pid, signal.SIGHUP)
        seen = manager.until("READY=1")
        reloading = seen.index("RELOADING=1")  # the keep-alive goes on meanwhile
        assert set(seen[:reloading]) | set(seen[reloading + 1 : -1]) <= {"WATCHDOG=1"}
        os.kill(process.pid, signal.SIGTERM)
        assert manager.until("STOPPING=1")[-1] == "STOPPING=1"
        assert process.wait(timeout=15) == 0
    finally:
        _stop(process)
        manager.close()


def test_the_keep_alive_goes_on_while_a_reload_builds_the_new_guard(tmp_path):
    """Before: the reload ran on the main thread, which feeds the watchdog, and took as long
    as a start (a store's relationships learned again: 24 s for 90,000): systemd would end
    a typogate whose listeners kept answering with the old Guard all along. Here 40,000
    protected domains, one of them new at the reload (as lists change before one), make
    the reload last seconds: it builds the index, which the start kept for lists as they
    were."""
    rng = random.Random(5)
    letters = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"]
    names = {"".join(rng.choices(letters, k=5)) + ".com" for _ in range(40_000)}
    (tmp_path / "protected.txt").write_text("\n".join(sorted(names)))
    config = tmp_path / "typogate.toml"
    config.write_text(f'[domains]\nprotected_files = ["{tmp_path / "protected.txt"}"]\n')
    port = free_port()
    manager = Manager(tmp_path / "notify")
    args = ["policy", "--listen", f"127.0.0.1:{port}", "--config", str(config)]
    process = _start(tmp_path, args, 1_000_000)
    try:
        assert manager.until("READY=1")[-1] == "READY=1"
        (tmp_path / "protected.txt").write_text("\n".join(sorted(names | {"bazobe.com"})))
        os.kill(process.pid, signal.SIGHUP)
        while (told := manager.next())[1] != "RELOADING=1":
            continue
        began, during = told[0], []
        while (told := manager.next())[1] != "READY=1":
            during.append(told[1])
        assert told[0] - began > 1.0  # a reload long enough to miss two keep-alives
        assert during.count("WATCHDOG=1") >= 2, (told[0] - began, during)
    finally:
        _stop(process)
        manager.close()


def test_a_fatal_signal_leaves_every_threads_stack_in_the_log(tmp_path):
    """systemd's watchdog ends a hung typogate with SIGABRT: the log says where it hung."""
    port = free_port()
    manager = Manager(tmp_path / "notify")
    process = _start(tmp_path, ["policy", "--listen", f"127.0.0.1:{port}"], 0)
    try:
        assert manager.until("READY=1") == ["READY=1"]
        os.kill(process.pid, signal.SIGABRT)
        assert process.wait(timeout=15) == -signal.SIGABRT
    finally:
        _stop(process)
        manager.close()
    log = (tmp_path / "typogate.log").read_text()
    assert "Fatal Python error: Aborted" in log
    assert "(most recent call first)" in log and "controller.py" in log, log


def test_the_watchdog_is_not_fed_while_a_listeners_loop_hangs(tmp_path, caplog):
    """A listener whose loop is stuck in one call answers no client: no keep-alive then,
    so systemd ends the process and starts another; fed again once the loop runs."""
    port = free_port()

    async def stuck(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        time.sleep(1.5)  # a call that blocks the loop: what a hang looks like
        writer.close()

    async def open_server(sock: socket.socket | None) -> asyncio.AbstractServer:
        return await asyncio.start_server(stuck, "127.0.0.1", port)

    listener = AsyncioListener("the test listener", "127.0.0.1", port, open_server)
    manager = Manager(tmp_path / "notify")
    watchdog = Watchdog(ServiceManager(str(tmp_path / "notify"), 0.2), [listener])
    listener.start()
    try:

        def beats(seconds: float) -> list[float]:
            """When the watchdog told the manager, looking every 10 ms for ``seconds``."""
            told = []
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                watchdog.look()
                time.sleep(0.01)
                manager.sock.settimeout(0)
                try:
                    while True:
                        manager.sock.recv(64)
                        told.append(time.monotonic())
                except BlockingIOError:
                    pass
            return told

        assert len(beats(0.5)) >= 4  # every 0.1 s while it runs
        with caplog.at_level(logging.ERROR), socket.create_connection(("127.0.0.1", port)):
            time.sleep(0.1)  # the loop takes the connection, and sleeps in its handler
            hung = beats(1.0)
        assert len(hung) <= 1, hung  # a look posted before the hang may still come back
        assert "watchdog: the test listener ran nothing" in caplog.text
        time.sleep(0.6)  # the handler returns
        assert len(beats(0.5)) >= 3
    finally:
        listener.stop()
        manager.close()


def test_the_manager_is_told_on_an_abstract_socket_and_only_its_own_watchdog_is_kept(
    monkeypatch,
):
    name = f"typogate-test-{uuid.uuid4().hex}"
    manager = Manager("\0" + name)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        monkeypatch.setenv("WATCHDOG_USEC", "30000000")
        monkeypatch.delenv("WATCHDOG_PID", raising=False)
        told = ServiceManager.from_environment()
        assert told.watchdog_seconds == 30
        told.ready()
        assert manager.next(5)[1] == "READY=1"
        # A watchdog meant for the process that started this one is not this one's.
        monkeypatch.setenv("WATCHDOG_PID", str(os.getppid()))
        assert ServiceManager.from_environment().watchdog_seconds is None
    finally:
        manager.close()


def test_without_a_manager_nothing_is_told_and_nothing_fails(monkeypatch, caplog):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    quiet = ServiceManager.from_environment()
    assert quiet.watchdog_seconds is None
    quiet.ready()
    # One that went away is said once in the log, and serving goes on.
    gone = ServiceManager("/nonexistent/notify", 1.0)
    with caplog.at_level(logging.WARNING):
        gone.ready()
        gone.alive()
    assert caplog.text.count("cannot tell the service manager") == 1


@pytest.fixture(autouse=True)
def _short_socket_paths(tmp_path):
    # An AF_UNIX path holds 108 bytes: pytest's tmp_path can come close.
    assert len(str(tmp_path / "notify")) < 100
