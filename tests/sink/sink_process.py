"""A real sink for the tests and the bench: ``typogate sink run`` as a process on a loopback
port, with its own SQLite store and configuration, stopped by its process id."""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from pathlib import Path

from mta import Server
from ports import free_port

CONFIG = """
[domains]
protected = ["army.mil", "navy.mil", "af.mil", "example.org"]
[sink]
hostname = "sink.test.example"
{extra}
[[sink.serve]]
suffix = "ml"
[[sink.serve]]
domain = "navy.ml"
choice = "null"
{serve}
[limits]
{limits}
"""


def forwarded(domain: str, port: int) -> str:
    """The ``[[sink.serve]]`` entry that passes ``domain``'s mail on to a registrant's
    server on 127.0.0.1:``port``."""
    return (
        f'[[sink.serve]]\ndomain = "{domain}"\nchoice = "forward"\n'
        f'forward_to = "127.0.0.1:{port}"\n'
    )


# A stranger's MAIL FROM that a terminal or a page would play: ESC c resets a terminal, and
# U+202E runs the rest of a line backwards (SMTPUTF8 lets it through to the sink).
ODD_SENDER_DOMAIN = "home\x1bc\u202elpmaxe.example"


def refused_from_odd_sender(port: int) -> None:
    """One recipient at a look-alike, refused by the sink at ``port``, from a sender at
    :data:`ODD_SENDER_DOMAIN`."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.command_encoding = "utf-8"
        client.ehlo("mx.sender.example")
        assert client.docmd(f"MAIL FROM:<x@{ODD_SENDER_DOMAIN}> SMTPUTF8")[0] == 250
        assert client.rcpt("john@army.ml")[0] == 550


@dataclass
class RunningSink:
    """A ``typogate sink run`` process, its folder (store, log, configuration) and port."""

    folder: Path
    port: int
    db: str
    config: Path
    server: Server

    @property
    def log(self) -> str:
        return self.server.log

    def stop(self) -> None:
        self.server.stop()


def start_sink(
    folder: Path,
    *,
    serve: str = "",
    extra: str = "",
    limits: str = "",
    db: str | None = None,
    open_files: int | None = None,
) -> RunningSink:
    """Start a sink in ``folder`` serving ``.ml`` (refuse) and ``navy.ml`` (null MX) for
    the organisations that protect army.mil, navy.mil, af.mil and example.org. ``serve``
    adds ``[[sink.serve]]`` entries, ``extra`` keys of ``[sink]``, ``limits`` keys of
    ``[limits]``; ``open_files`` is the process's limit of open files."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "typogate.toml"
    config.write_text(CONFIG.format(serve=serve, extra=extra, limits=limits))
    port = free_port()
    db = db or f"sqlite:///{folder / 'sink.db'}"
    args = ["sink", "run", "--listen", f"127.0.0.1:{port}", "--config", str(config)]
    server = Server([*args, "--db", db], port, folder / "sink.log", open_files=open_files).start()
    return RunningSink(folder, port, db, config, server)
