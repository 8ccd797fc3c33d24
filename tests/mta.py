"""Real processes for the gateway tests: a throwaway Postfix instance, a recording SMTP sink,
and typogate's own servers, each started here and stopped by its process id."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path

from aiosmtpd.controller import Controller
from ports import free_port, wait_for_port

TYPOGATE = str(Path(sys.executable).with_name("typogate"))


def run_typogate(*args: str, cwd: Path) -> tuple[int, str]:
    """Run ``typogate ARGS`` to its end (within 60 s): its exit status, and what it said on
    stderr as one line (the console wraps long lines)."""
    done = subprocess.run([TYPOGATE, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    return done.returncode, " ".join(done.stderr.split())


def typogate_output(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run ``typogate ARGS`` in ``cwd`` to a successful end (within 120 s); what it printed
    on stdout."""
    done = subprocess.run(
        [TYPOGATE, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def policy_answer(
    port: int,
    recipient: str,
    sender: str = "a@example.org",
    *,
    timeout: float = 10,
    **attributes: str,
) -> str:
    """Ask the policy service on 127.0.0.1:``port`` about one recipient, as Postfix does at
    RCPT (with more ``attributes``, such as ``sasl_username``), waiting up to ``timeout``
    seconds; its whole answer (``action=...``)."""
    more = "".join(f"{name}={value}\n" for name, value in attributes.items())
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as client:
        client.sendall(
            b"request=smtpd_access_policy\nprotocol_state=RCPT\n"
            + f"sender={sender}\nrecipient={recipient}\n{more}\n".encode()
        )
        return read_policy_answer(client).decode()


def read_policy_answer(client: socket.socket) -> bytes:
    """The next answer of a policy service on ``client`` (``action=...`` and the empty
    line); ConnectionError when it closes before it has answered."""
    answer = b""
    while not answer.endswith(b"\n\n"):
        chunk = client.recv(4096)
        if not chunk:
            raise ConnectionError(f"the policy service closed without answering: {answer!r}")
        answer += chunk
    return answer


MASTER_CF = """\
{smtpd_port} inet n - n - - smtpd
pickup    unix  n       -       n       5       1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       1       1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def postfix_root() -> Path:
    """A fresh folder for a Postfix instance that the postfix user can reach (pytest's own
    temporary folders are private to root)."""
    root = Path(tempfile.mkdtemp(prefix="typogate-postfix-", dir="/tmp"))
    root.chmod(0o755)
    return root


@dataclass
class Delivered:
    sender: str
    recipients: list[str]
    data: bytes
    mail_options: list[str] = field(default_factory=list)

    @property
    def headers(self):
        return message_from_bytes(self.data)


class _Recorder:
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    async def handle_MAIL(self, server, session, envelope, address, options):  # noqa: N802
        # As strict as RFC 1870 lets a server be: SIZE only where it was offered.
        if not self.sink.offers_size and any(o.upper().startswith("SIZE=") for o in options):
            return "555 5.5.4 SIZE was not offered"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd hook)
        with self.sink.lock:
            self.sink.messages.append(
                Delivered(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    envelope.content,
                    list(envelope.mail_options),
                )
            )
        return "250 OK delivered to the test sink"


@dataclass
class Sink:
    """The final destination: an SMTP server that records what reached it."""

    port: int
    messages: list[Delivered] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Offers SMTPUTF8, as most next hops do: Postfix then relays UTF-8 addresses as they are.
    smtputf8: bool = False
    # Offers SIZE (RFC 1870), as aiosmtpd and Postfix do unless told otherwise.
    offers_size: bool = True

    def start(self) -> Sink:
        self._controller = Controller(
            _Recorder(self),
            hostname="127.0.0.1",
            port=self.port,
            enable_SMTPUTF8=self.smtputf8,
            data_size_limit=33554432 if self.offers_size else 0,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def wait_for(self, predicate, timeout: float = 30.0) -> Delivered:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for message in self.messages:
                    if predicate(message):
                        return message
            time.sleep(0.1)
        raise AssertionError(f"no such message within {timeout}s; got {self.messages}")

    def to(self, recipient: str) -> list[Delivered]:
        with self.lock:
            return [m for m in self.messages if recipient in m.recipients]


@dataclass
class Postfix:
    """A throwaway Postfix instance on loopback ports with its own queue and log file."""

    root: Path
    smtpd_port: int
    relay_port: int
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def config_dir(self) -> Path:
        return self.root / "etc"

    @property
    def log(self) -> str:
        path = self.root / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> Postfix:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        (self.root / "queue").mkdir(exist_ok=True)
        (self.root / "data").mkdir(exist_ok=True)
        main = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.root / "queue"),
            "data_directory": str(self.root / "data"),
            "maillog_file": str(self.root / "maillog"),
            "maillog_file_prefixes": str(self.root),
            "myhostname": "typogate-test.localdomain",
            "mydomain": "localdomain",
            "mydestination": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "relayhost": f"[127.0.0.1]:{self.relay_port}",
            "smtp_dns_support_level": "disabled",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "smtpd_delay_open_until_valid_rcpt": "no",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "biff": "no",
            "queue_run_delay": "2s",
            "minimal_backoff_time": "2s",
            "maximal_backoff_time": "4s",
            "smtp_connect_timeout": "5s",
            "smtpd_policy_service_timeout": "10s",
            "smtpd_policy_service_try_limit": "2",
            "smtpd_policy_service_retry_delay": "1s",
            **self.settings,
        }
        (self.config_dir / "main.cf").write_text(
            "".join(f"{key} = {value}\n" for key, value in main.items())
        )
        (self.config_dir / "master.cf").write_text(MASTER_CF.format(smtpd_port=self.smtpd_port))
        self._postfix("set-permissions")
        self._postfix("start")
        wait_for_port(self.smtpd_port)
        return self

    def _postfix(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["postfix", "-c", str(self.config_dir), *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )

    def postsuper(self, *args: str) -> str:
        done = subprocess.run(
            ["postsuper", "-c", str(self.config_dir), *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        return done.stdout + done.stderr

    def queue(self) -> str:
        """The queue listing (``postqueue -p``)."""
        done = subprocess.run(
            ["postqueue", "-c", str(self.config_dir), "-p"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return done.stdout

    def flush(self) -> None:
        subprocess.run(["postqueue", "-c", str(self.config_dir), "-f"], timeout=30, check=False)

    def sendmail(
        self, sender: str, recipients: list[str], message: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sendmail", "-C", str(self.config_dir), "-i", "-f", sender, *recipients],
            input=message,
            capture_output=True,
            text=True,
            timeout=30,
        )

    def master_pid(self) -> int | None:
        pid_file = self.root / "queue" / "pid" / "master.pid"
        try:
            return int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        pid = self.master_pid()
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)

    def remove(self) -> None:
        """Stop, then delete the instance's folder (queue, log)."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class Server:
    """A typogate server started as a subprocess, stopped by its PID."""

    def __init__(
        self, args: list[str], port: int, log: Path, *, open_files: int | None = None
    ) -> None:
        self.args = args
        self.port = port
        self.log_path = log
        self.open_files = open_files  # the process's limit of open files (soft and hard)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (lives as long as the server)
        command = [TYPOGATE, *self.args]
        if self.open_files is not None:
            command = ["prlimit", f"--nofile={self.open_files}:{self.open_files}", *command]
        self.process = subprocess.Popen(command, stdout=self._log, stderr=self._log)
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.stop()
            raise AssertionError(self.log) from None
        return self

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Stop the server by its PID. One that had exited by itself is said so on stdout,
        with the end of its log, which pytest shows beside a failure: a test that lost its
        server then fails with the reason, not only with a refused or reset connection."""
        if self.process is not None and self.process.poll() is not None:
            print(f"{self.args[0]} exited by itself (code {self.process.returncode}):")
            print(*self.log.splitlines()[-20:], sep="\n")
        elif self.process is not None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


def web_on(db: str, folder: Path) -> Server:
    """``typogate web`` on the store ``db``, started on a free loopback port with the
    default configuration otherwise (its log in ``folder``); stop it when done."""
    port = free_port()
    config = folder / "web.toml"
    config.write_text(f'[web]\nlisten = "127.0.0.1:{port}"\n')
    return Server(["web", "--db", db, "--config", str(config)], port, folder / "web.log").start()


def swaks(
    port: int, sender: str, recipients: list[str], body: str = "hello"
) -> subprocess.CompletedProcess[str]:
    """Send one message over SMTP with swaks; its transcript is in stdout."""
    return subprocess.run(
        [
            "swaks",
            "--server",
            f"127.0.0.1:{port}",
            "--from",
            sender,
            "--to",
            ",".join(recipients),
            "--body",
            body,
            "--timeout",
            "30",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def talk(port: int, lines: list[str], content: str = "") -> list[tuple[int, str]]:
    """One SMTP session after EHLO, each line written as it is (UTF-8, for SMTPUTF8
    addresses); every reply, and after DATA's 354 the reply to ``content``."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.command_encoding = "utf-8"
        client.ehlo("client.example")
        replies = []
        for line in lines:
            code, reply = client.docmd(line)
            replies.append((code, reply.decode()))
            if line == "DATA" and code == 354:
                client.send(f"{content}\r\n.\r\n".encode())
                code, reply = client.getreply()
                replies.append((code, reply.decode()))
        return replies


def hold_through_postfix(
    postfix: Postfix, db: str, recipient: str, sender: str = "alice@example.org"
) -> dict:
    """Send one message through ``postfix`` to a typo recipient that typogate holds; the
    hold as the store at ``db`` recorded it."""
    from typogate.store import Store

    result = swaks(postfix.smtpd_port, sender, [recipient], f"body for {recipient}")
    assert re.search(r"250 2\.0\.0 Ok: queued", result.stdout), result.stdout
    store = Store(db, writer=False)
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            found = [h for h in store.holds.in_state() if h.recipients == [recipient]]
            if found:
                return dataclasses.asdict(found[0])
            time.sleep(0.1)
    finally:
        store.close()
    raise AssertionError("hold not recorded")
