"""A real Postfix as the sending MTA, relaying mail for ``.ml`` to a real sink by its
transport map: the sender's bounce carries the hint, and afterwards the sink's store and
folder hold no content and no recipient local part, only the metadata."""

from __future__ import annotations

import hashlib
import hmac
import re
import shutil
import sqlite3
import time

import pytest
from mta import Postfix, Sink, postfix_root, swaks
from ports import free_port

pytestmark = [
    pytest.mark.postfix,
    pytest.mark.skipif(shutil.which("postfix") is None, reason="make test installs postfix"),
]

# Local parts and a body no other text in the sink's files could contain by chance.
LOCALS = ["kilroy.travel", "quentin.orders"]
BODY = "Room 1207 at the Hotel Bamako, arriving Tuesday: ZEBRA-BODY-MARKER-41"


def bounce_text(message) -> str:
    """A bounce's text parts, unfolded (Postfix wraps long diagnostic lines)."""
    parts = [p.get_payload(decode=True) or b"" for p in message.headers.walk()]
    return " ".join(b" ".join(parts).decode(errors="replace").split())


def test_postfix_bounces_with_the_hint_and_the_sink_keeps_no_content(sink_in):
    sink = sink_in()
    sender_side = Sink(free_port()).start()  # everything not for .ml: the senders' mailboxes
    root = postfix_root()  # removed with the instance, the transport table in it too
    transport = root / "transport"
    transport.write_text(f".ml smtp:[127.0.0.1]:{sink.port}\nml smtp:[127.0.0.1]:{sink.port}\n")
    postfix = Postfix(
        root,
        free_port(),
        sender_side.port,
        {"transport_maps": f"texthash:{transport}"},
    )
    try:
        postfix.start()
        for local in LOCALS:
            result = swaks(postfix.smtpd_port, "alice@sender.example", [f"{local}@army.ml"], BODY)
            assert "250 2.0.0 Ok: queued" in result.stdout, result.stdout
        # Postfix tries the sink, is refused at RCPT, and bounces to the original sender.
        bounces = [
            sender_side.wait_for(
                lambda m, local=local: (
                    m.recipients == ["alice@sender.example"]
                    and f"{local}@army.ml".encode() in m.data
                )
            )
            for local in LOCALS
        ]
        for local, bounce in zip(LOCALS, bounces, strict=True):
            text = bounce_text(bounce)
            assert f"army.ml is not army.mil. Did you mean {local}@army.mil?" in text, text
            assert "Nothing was delivered or kept." in text
            assert re.search(r"5\.1\.2", text)
        assert "in reply to RCPT TO command" in bounce_text(bounces[0])
    finally:
        postfix.remove()
        sender_side.stop()
    sink.stop()  # the store writes what it queued on the way out

    # The metadata is there: one record per refused recipient, with the keyed hash.
    db = sqlite3.connect(sink.folder / "sink.db")
    key = db.execute("SELECT value FROM secrets WHERE name = 'sink-local-part'").fetchone()[0]
    rows = db.execute(
        "SELECT client_address, helo, sender_domain, local_hash, recipient, lookalike, "
        "intended, outcome, reply FROM sink_records ORDER BY id"
    ).fetchall()
    db.close()
    assert len(rows) == len(LOCALS)
    for local, row in zip(LOCALS, rows, strict=True):
        address, helo, sender_domain, local_hash, recipient, lookalike, intended, outcome, reply = (
            row
        )
        assert (address, helo, sender_domain) == (
            "127.0.0.1",
            "typogate-test.localdomain",
            "sender.example",
        )
        assert local_hash == hmac.new(key.encode(), local.encode(), hashlib.sha256).hexdigest()
        assert recipient is None
        assert (lookalike, intended, outcome) == ("army.ml", "army.mil", "hint")
        assert reply.startswith("550 5.1.2 <*@army.ml>: army.ml is not army.mil.")

    # Nothing else: no file of the sink (store, its journal, log) holds a local part or a
    # word of the message.
    time.sleep(0.2)
    files = [f for f in sink.folder.rglob("*") if f.is_file()]
    assert {f.name for f in files} >= {"sink.db", "sink.log", "typogate.toml"}
    for file in files:
        content = file.read_bytes()
        for secret in [*LOCALS, "ZEBRA-BODY-MARKER", "Hotel Bamako"]:
            assert secret.encode() not in content, f"{secret!r} found in {file.name}"
