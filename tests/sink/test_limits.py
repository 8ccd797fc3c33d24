"""The sink under a flood of connections: it is on port 25 for anyone, so one client address
gets a share of the sessions and no more, the sessions at once are bounded, a flood under a
low open-file limit is told 421 instead of leaving every sender without a greeting, a
client that drops takes its session with a registrant's server along, and a client that
sends recipient after recipient cannot fill the store's disk.

Clients come from several loopback addresses (127.0.0.0/8 is all on ``lo``), so "another
client" is another address, as on the internet.
"""

from __future__ import annotations

import resource
import selectors
import smtplib
import socket
import sqlite3
import time

from mta import Sink, talk
from ports import free_port, sessions_at, wait_until
from sink_process import forwarded


def connect(port: int, client: str = "127.0.0.1", timeout: float = 10) -> socket.socket:
    """A TCP connection to the sink from the loopback address ``client``."""
    return socket.create_connection(
        ("127.0.0.1", port), timeout=timeout, source_address=(client, 0)
    )


def greeting(sock: socket.socket) -> str:
    """The first line the sink sends ("" when it closed without one)."""
    return sock.makefile("rb").readline().decode()


def wait_until_idle(port: int) -> None:
    """Until the connection that found the sink listening is over on its side too."""
    assert wait_until(lambda: sessions_at(port) == 0, within=10), "the start's probe never ended"


def greetings(socks: list[socket.socket], within: float) -> list[str]:
    """The first line each connection got within ``within`` seconds ("" when none came)."""
    lines = dict.fromkeys(socks, b"")
    waiting = selectors.DefaultSelector()
    for sock in socks:
        sock.setblocking(False)
        waiting.register(sock, selectors.EVENT_READ)
    deadline = time.monotonic() + within
    while waiting.get_map() and time.monotonic() < deadline:
        for key, _ in waiting.select(timeout=deadline - time.monotonic()):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                data = sock.recv(512)
            except ConnectionError:
                data = b""
            lines[sock] += data
            if not data or b"\n" in lines[sock]:
                waiting.unregister(sock)
    waiting.close()
    return [lines[sock].decode().split("\r\n")[0] for sock in socks]


def test_one_client_address_gets_its_share_of_sessions_and_no_more(sink_in):
    sink = sink_in(limits="sink_connections_per_client = 3")
    wait_until_idle(sink.port)
    first = [connect(sink.port) for _ in range(3)]
    try:
        assert all(greeting(sock).startswith("220 ") for sock in first)
        refused = greeting(connect(sink.port))
        assert refused.startswith("421 4.7.0 ") and "too many connections" in refused
        # Another client is not held up by the first one's sessions.
        other = connect(sink.port, "127.0.0.2")
        assert greeting(other).startswith("220 ")
        other.close()
        first.pop().close()  # a place of the first client's is free again
        served = wait_until(lambda: greeting(connect(sink.port)).startswith("220 "), within=10)
        assert served, "the freed place was never given again"
    finally:
        for sock in first:
            sock.close()
    assert "too many connections from 127.0.0.1" in sink.log


def test_sessions_at_once_are_bounded_whoever_the_clients_are(sink_in):
    sink = sink_in(limits="sink_connections = 4")
    wait_until_idle(sink.port)
    clients = [connect(sink.port, f"127.0.0.{n}") for n in range(2, 6)]
    try:
        assert all(greeting(sock).startswith("220 ") for sock in clients)
        refused = greeting(connect(sink.port, "127.0.0.6"))
        assert refused.startswith("421 4.3.2 ") and "too many connections" in refused
    finally:
        for sock in clients:
            sock.close()


def test_a_flood_under_a_low_open_file_limit_is_told_421_not_left_waiting(sink_in):
    # A service manager's default open-file limit is 1024; 512 here, with the default
    # bounds (more sessions than 512 descriptors can hold), and 600 connections from 30
    # addresses. Unbounded, the sink ran out of descriptors: accept() failed, the clients
    # past the limit got no greeting at all and the log filled with tracebacks.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    sink = sink_in(open_files=512)
    flood: list[socket.socket] = []
    try:
        for n in range(600):
            try:
                flood.append(connect(sink.port, f"127.0.0.{2 + n % 30}", timeout=2))
            except TimeoutError:  # the sink no longer accepts at all
                break
        assert len(flood) == 600, f"the sink stopped accepting after {len(flood)} connections"
        answered = greetings(flood, within=15)
        assert "" not in answered, f"{answered.count('')} of 600 got no greeting"
        served = sum(line.startswith("220 ") for line in answered)
        told_later = sum(line.startswith("421 ") for line in answered)
        assert served + told_later == 600
        assert 0 < served < 512 // 2, served  # a session may hold two descriptors
    finally:
        for sock in flood:
            sock.close()
    # Once the flood is gone, a sender is served again.
    served = wait_until(lambda: greeting(connect(sink.port)).startswith("220 "), within=10)
    assert served, "no sender was served after the flood"
    assert "open-file limit" in sink.log
    assert "Too many open files" not in sink.log


def test_a_client_that_drops_takes_its_forwarded_session_along(sink_in):
    # Each forwarded recipient opens a session with the registrant's server; a client that
    # dropped without QUIT left it open (a descriptor and the registrant's place) for as
    # long as the registrant's server waited, so a few clients could use them all up.
    registrant = Sink(free_port()).start()
    try:
        sink = sink_in(serve=forwarded("armyshop.ml", registrant.port))
        for _ in range(3):
            client = smtplib.SMTP("127.0.0.1", sink.port, timeout=10)
            client.ehlo("mail.sender.example")
            assert client.mail("alice@sender.example")[0] == 250
            assert client.rcpt("orders@armyshop.ml")[0] == 250
            client.close()  # dropped: no QUIT
        closed = wait_until(lambda: sessions_at(registrant.port) == 0, within=10)
        assert closed, "the forwarded sessions outlived their clients"
    finally:
        registrant.stop()


def test_the_sessions_passed_on_to_registrants_at_once_are_bounded(sink_in):
    """Before: every session with a forwarded recipient could send DATA of up to 25 MB,
    which the sink holds in memory twice: ten at once took 478 MB, and the 500 sessions
    it lets in could take some 24 GB. Now at most sink_forwarding_sessions are passed on
    at once; another is told 452 (its server comes again), and the hints go on."""
    registrant = Sink(free_port()).start()
    try:
        sink = sink_in(
            serve=forwarded("armyshop.ml", registrant.port),
            limits="sink_forwarding_sessions = 2",
        )
        clients = [smtplib.SMTP("127.0.0.1", sink.port, timeout=10) for _ in range(3)]
        for client in clients:
            client.ehlo("mail.sender.example")
            assert client.mail("alice@sender.example")[0] == 250
        for client in clients[:2]:
            assert client.rcpt("orders@armyshop.ml")[0] == 250
        code, text = clients[2].rcpt("orders@armyshop.ml")
        assert (code, text.decode()[:5]) == (452, "4.3.1"), (code, text)
        assert clients[2].rcpt("john@army.ml")[0] == 550  # the hint, as ever
        clients[0].quit()  # one place is free again
        assert clients[2].rcpt("orders@armyshop.ml")[0] == 250
        for client in clients[1:]:
            client.quit()
    finally:
        registrant.stop()
    assert "sink: 2 sessions passed on at once, deferring another" in sink.log


def test_a_sender_no_one_can_pass_on_hears_so_even_while_the_forwards_are_full(sink_in):
    """Before: the bound of sessions passed on was checked before the sender, so a
    sender with a control character that came while the bound was reached was told 452
    ("try again later"); its server came again, only to hear 501 then. Now it hears 501
    at once, however full the forwards are."""
    registrant = Sink(free_port()).start()
    try:
        sink = sink_in(
            serve=forwarded("armyshop.ml", registrant.port),
            limits="sink_forwarding_sessions = 1",
        )
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as holder:
            holder.ehlo("mail.sender.example")
            assert holder.mail("alice@sender.example")[0] == 250
            assert holder.rcpt("orders@armyshop.ml")[0] == 250  # the one place is taken
            replies = talk(
                sink.port, ["MAIL FROM:<j\x01rg@sender.example>", "RCPT TO:<orders@armyshop.ml>"]
            )
            holder.quit()
        refusal = (501, "5.1.7 the sender address holds a control character (U+0001)")
        assert replies[1] == refusal, replies
    finally:
        registrant.stop()


def refusals(port: int, client: str, count: int) -> list[str]:
    """``count`` recipients at army.ml in one session from ``client``; the replies."""
    replies = []
    with smtplib.SMTP("127.0.0.1", port, timeout=10, source_address=(client, 0)) as smtp:
        smtp.ehlo("mail.sender.example")
        assert smtp.mail("alice@sender.example")[0] == 250
        for n in range(count):
            code, text = smtp.rcpt(f"user{n}@army.ml")
            replies.append(f"{code} {text.decode()}")
    return replies


def records_by_range(sink) -> dict[str, int]:
    with sqlite3.connect(sink.folder / "sink.db") as db:
        rows = db.execute("SELECT client_range, count(*) FROM sink_records GROUP BY 1")
        return dict(rows.fetchall())


def test_a_client_sending_recipient_after_recipient_cannot_fill_the_store(sink_in):
    # Every answered recipient was a row (about 390 bytes with its indexes), and one client
    # on one connection gets about 2,000 answers a second: some 70 GB a day. Now each hour
    # keeps at most so many records from one client range and in all; the answers go on.
    sink = sink_in(
        limits="sink_records_per_client_hour = 5\nsink_records_per_hour = 8",
        extra="batch_seconds = 0.1",
    )
    first = refusals(sink.port, "127.0.0.1", 12)
    assert all(reply.startswith("550 5.1.2 ") for reply in first), first  # all answered
    other = refusals(sink.port, "127.0.1.1", 12)  # another /24
    assert all(reply.startswith("550 5.1.2 ") for reply in other), other
    written = wait_until(lambda: sum(records_by_range(sink).values()) >= 8, within=10)
    assert written, records_by_range(sink)
    time.sleep(0.5)  # a batch more: nothing past the budgets comes
    assert records_by_range(sink) == {"127.0.0.0/24": 5, "127.0.1.0/24": 3}
    assert "127.0.0.0/24 reached its 5 records this hour" in sink.log
    assert "8 records this hour in all" in sink.log
