"""Exports read by real Postfix tools, SMTP probes against real SMTP servers, alerts to a
real web server and mail sink, and the same run on Dask."""

from __future__ import annotations

import asyncio
import csv
import io
import ipaddress
import json
import shutil
import subprocess
import threading
from email import message_from_bytes
from email.policy import default
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from aiosmtpd.controller import Controller
from dns_server import DnsServer
from lookalike_zone import PLANTED, ZONES
from mta import TYPOGATE, Sink, web_on
from ports import free_port
from web_client import ApiClient, first_admin_password

from typogate.monitor import (
    Change,
    Engine,
    Lookup,
    MailFacts,
    MailState,
    Nameserver,
    Probe,
    Settings,
    run_monitor,
)
from typogate.monitor.alerts import AlertError, MailAlert, post_webhook, send_mail
from typogate.monitor.exports import Export, write
from typogate.monitor.probe import probe_accept_all
from typogate.monitor.snapshots import changes


def settings(nameserver: str, **options: object) -> Settings:
    return Settings(Lookup((Nameserver.parse(nameserver),)), **options)  # type: ignore[arg-type]


@pytest.mark.postfix
def test_access_map_works_in_postfix(tmp_path, planted):
    if shutil.which("postmap") is None:
        pytest.skip("Postfix is installed by make test")
    run = run_monitor(["army.mil"], settings(planted.nameserver))
    access = tmp_path / "lookalikes"
    with access.open("w", encoding="utf-8") as out:
        assert write(Export.ACCESS, run.findings, out) == len(PLANTED)
    config = tmp_path / "postfix"  # postmap reads a main.cf: an empty one of its own
    config.mkdir()
    (config / "main.cf").write_text("")
    postmap = ["postmap", "-c", str(config)]
    subprocess.run([*postmap, f"hash:{access}"], check=True, capture_output=True)
    for domain in ("army.ml", "xn--rmy-5cd.mil", "аrmy.mil", "ARMYMIL.COM"):
        said = subprocess.run(
            [*postmap, "-q", domain, f"hash:{access}"], capture_output=True, text=True
        )
        assert said.stdout.startswith("REJECT 5.1.2 ") and "did you mean army.mil?" in said.stdout
        # Postfix hands the text to the client as it is: ASCII (RFC 5321), the look-alike
        # by its A-label, not "аrmy.mil is a look-alike of army.mil" in UTF-8.
        assert said.stdout.isascii(), said.stdout
        if domain in ("xn--rmy-5cd.mil", "аrmy.mil"):
            assert "xn--rmy-5cd.mil is a look-alike of army.mil" in said.stdout, said.stdout
    missing = subprocess.run([*postmap, "-q", "army.mil", f"hash:{access}"], capture_output=True)
    assert missing.returncode == 1  # the protected domain itself is never in the map


def test_csv_has_the_contract_and_the_probe(planted):
    run = run_monitor(["army.mil"], settings(planted.nameserver))
    out = io.StringIO()
    write(Export.CSV, run.findings, out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert {row["domain"]: row["state"] for row in rows} == {d: p[0] for d, p in PLANTED.items()}
    army = next(row for row in rows if row["domain"] == "army.ml")
    assert army["mx"] == "mail.army.ml mx2.army.ml" and army["probe"] == ""


def test_a_mail_host_named_as_a_formula_is_written_as_text():
    """Before: a look-alike's owner who named its mail host =1+1.evil.example had the CSV
    hold a cell that a spreadsheet runs as a formula (CSV injection)."""
    with DnsServer({"army.ml": "@ MX 10 =1+1.evil.example.\n"}) as dns:
        run = run_monitor(["army.mil"], settings(dns.nameserver))
    out = io.StringIO()
    write(Export.CSV, run.findings, out)
    (army,) = [
        row for row in csv.DictReader(io.StringIO(out.getvalue())) if row["domain"] == "army.ml"
    ]
    assert (army["state"], army["mx"]) == ("mx", "'=1+1.evil.example")


class _Refuser:
    async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802
        return "550 5.1.1 no such user here"


class _Taker:
    async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802
        envelope.rcpt_tos.append(address)
        return "250 OK"


class _Counting(_Taker):
    """Takes any recipient, and keeps the EHLO name of each probe that reached it."""

    def __init__(self) -> None:
        self.greeted: list[str] = []

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
        self.greeted.append(hostname)
        session.host_name = hostname  # what aiosmtpd leaves to a handler with this hook
        return responses


def test_smtp_probe_tells_accept_all_from_refusal_and_only_when_asked():
    port = free_port()
    zones = {
        "army.ml": "@ MX 10 mail.army.ml.\nmail A 127.0.0.1\n",
        "armymil.com": "@ A 127.0.0.1\n",
        "arrny.mil": "@ MX 0 .\n",
    }
    counting = _Counting()
    with DnsServer(zones) as server:
        lookup = Lookup((Nameserver.parse(server.nameserver),))
        quiet = run_monitor(["army.mil"], settings(server.nameserver))  # no probe by default
        controller = Controller(counting, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            assert {f.observation.probe for f in quiet.findings} == {None} and not counting.greeted
            run = run_monitor(
                ["army.mil"],
                settings(server.nameserver, probe_smtp=True, probe_port=port, probe_private=True),
            )
        finally:
            controller.stop()
        probes = {f.observation.look_alike.domain: f.observation.probe for f in run.findings}
        assert probes == {"army.ml": Probe.ACCEPTS_ALL, "armymil.com": Probe.ACCEPTS_ALL,
                          "arrny.mil": None}  # fmt: skip
        assert len(counting.greeted) == 2
        refusing = Controller(_Refuser(), hostname="127.0.0.1", port=port)
        refusing.start()
        try:
            said = asyncio.run(
                probe_accept_all(
                    "army.ml",
                    MailFacts(MailState.MX, ("mail.army.ml",)),
                    lookup,
                    port=port,
                    private=True,
                )
            )
        finally:
            refusing.stop()
        assert said is Probe.REFUSES_UNKNOWN
        gone = asyncio.run(
            probe_accept_all(
                "army.ml",
                MailFacts(MailState.MX, ("mail.army.ml",)),
                lookup,
                port=port,
                private=True,
            )
        )
        assert gone is Probe.UNREACHABLE


def test_the_probe_connects_to_no_address_off_the_public_internet():
    """Before: the probe connected to whatever a look-alike's mail host resolved to. Its
    owner, the squatter the monitor watches, could point it at this machine, the internal
    network or a cloud's metadata address (169.254.169.254), and typogate spoke SMTP to them
    from inside: to the organisation's own relay, which takes any recipient, that read as
    "accepts_all". Now such an address is not probed, and the probe says "not_public"."""
    port = free_port()
    zones = {
        "army.ml": "@ MX 10 mail.army.ml.\nmail A 127.0.0.1\n",
        "armymil.com": "@ A 10.0.0.5\n",
        "arny.mil": "@ MX 10 mx.arny.mil.\nmx A 169.254.169.254\nmx AAAA ::ffff:127.0.0.1\n",
        "arrny.mil": "@ A 192.168.1.25\n@ AAAA fd00::25\n",
    }
    counting = _Counting()
    with DnsServer(zones) as server:
        controller = Controller(counting, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            run = run_monitor(
                ["army.mil"], settings(server.nameserver, probe_smtp=True, probe_port=port)
            )
        finally:
            controller.stop()
    probes = {f.observation.look_alike.domain: f.observation.probe for f in run.findings}
    assert probes == dict.fromkeys(zones, Probe.NOT_PUBLIC), probes
    assert counting.greeted == []


def test_the_probe_connects_to_none_of_the_organisations_own_networks():
    """Before: nothing told the probe which public addresses were the organisation's own.
    A look-alike registered defensively, or a squatter's, pointing its mail host at the
    organisation's own relay was probed there, and that relay's answer was reported as the
    look-alike's. Now addresses in an own network (--own-network) are never probed; a
    look-alike whose other addresses are probed is judged by those."""
    port = free_port()
    own = (ipaddress.ip_network("127.0.0.2/32"),)
    zones = {
        "army.ml": "@ MX 10 mail.army.ml.\n@ MX 20 mx2.army.ml.\n"
        "mail A 127.0.0.2\nmx2 A 127.0.0.1\n",
        "armymil.com": "@ A 127.0.0.2\n@ AAAA ::ffff:127.0.0.2\n",
    }
    counting = _Counting()
    with DnsServer(zones) as server:
        lookup = Lookup((Nameserver.parse(server.nameserver),))
        controller = Controller(counting, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            run = run_monitor(
                ["army.mil"],
                settings(server.nameserver, probe_smtp=True, probe_port=port,
                         probe_private=True, own_networks=own),
            )  # fmt: skip
            # Outside a lab, a look-alike on an own and a private address is still "own".
            mixed = asyncio.run(
                probe_accept_all(
                    "arny.mil",
                    MailFacts(MailState.MX, ("mail.army.ml", "mx2.army.ml")),
                    lookup,
                    port=port,
                    own=(ipaddress.ip_network("127.0.0.0/30"),),
                )
            )
        finally:
            controller.stop()
    probes = {f.observation.look_alike.domain: f.observation.probe for f in run.findings}
    assert probes == {"army.ml": Probe.ACCEPTS_ALL, "armymil.com": Probe.OWN_NETWORK}, probes
    assert mixed is Probe.OWN_NETWORK
    assert len(counting.greeted) == 1  # army.ml's second host, 127.0.0.1


def test_a_look_alike_with_many_mail_hosts_costs_the_probe_five_addresses():
    """Before: the probe tried every address of every mail host, each for up to its
    timeout at every reply. A squatter listing hundreds of hosts that answer slowly kept a
    probe busy for hours. Now it tries the first five addresses by preference, as many as
    Postfix's SMTP client would (smtp_mx_address_limit)."""
    hosts = tuple(f"mx{n}.army.ml" for n in range(1, 9))
    zone = "".join(f"@ MX {n} mx{n}.army.ml.\nmx{n} A 127.0.0.{n + 1}\n" for n in range(1, 9))
    port = free_port()
    reached: list[str] = []

    async def probed() -> Probe | None:
        async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            reached.append(writer.get_extra_info("sockname")[0])
            writer.close()  # no greeting: the probe goes on to the next address

        servers = [
            await asyncio.start_server(hang_up, f"127.0.0.{n + 1}", port) for n in range(1, 9)
        ]
        try:
            return await probe_accept_all(
                "army.ml", MailFacts(MailState.MX, hosts), lookup, port=port, private=True
            )
        finally:
            for server in servers:
                server.close()

    with DnsServer({"army.ml": zone}) as dns:
        lookup = Lookup((Nameserver.parse(dns.nameserver),))
        assert asyncio.run(probed()) is Probe.UNREACHABLE
    assert reached == [f"127.0.0.{n + 1}" for n in range(1, 6)], reached


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server hook)
        length = int(self.headers["Content-Length"])
        _Hook.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_alerts_only_on_change(tmp_path):
    web = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{web.server_port}/hook"
    sink = Sink(free_port()).start()
    try:
        with DnsServer(ZONES) as server:
            first = run_monitor(["army.mil"], settings(server.nameserver))
            previous = {f.observation.look_alike.ascii: f.observation.facts for f in first.findings}
            same = run_monitor(["army.mil"], settings(server.nameserver), previous)
        assert changes(same.findings) == []  # nothing to send
        new = changes(first.findings)
        assert {f.change for f in new} == {Change.NEW}
        post_webhook(url, new)
        send_mail(MailAlert("soc@example.org", "127.0.0.1", sink.port), new)
        mail = sink.wait_for(lambda m: "soc@example.org" in m.recipients)
    finally:
        sink.stop()
        web.shutdown()
    assert [item["domain"] for item in _Hook.received[0]["changes"]] == [
        f.observation.look_alike.domain for f in new
    ]
    assert "army.ml (for army.mil): new, now mx" in mail.data.decode()
    with pytest.raises(AlertError):
        post_webhook(f"http://127.0.0.1:{free_port()}/", new)


def test_a_server_that_starts_taking_any_recipient_is_a_change(tmp_path):
    """Before: the change between runs read DNS only. A squatter who turned a catch-all on
    at a look-alike that already took mail, the moment every slip towards it starts being
    read, was "same": no alert, and the dashboard said nothing. Now a probe's answer that
    went from refusing unknown recipients to taking any (or back) is a change, alerted with
    the probe's answer; a server that does not answer is no news, and the next answer is
    compared with the last one it gave."""
    port, _Hook.received = free_port(), []
    mailbox = Sink(free_port()).start()
    web = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    (tmp_path / "protected.txt").write_text("army.mil\n")
    db = f"sqlite:///{tmp_path / 'store.db'}"

    def watch(nameserver: str, handler: object | None) -> dict[str, str]:
        smtp = Controller(handler, hostname="127.0.0.1", port=port) if handler else None
        if smtp is not None:
            smtp.start()
        try:
            done = subprocess.run(
                [TYPOGATE, "monitor", "--protect", "protected.txt", "--nameserver", nameserver,
                 "--db", db, "--json", "--probe-smtp", "--probe-private", "--probe-port",
                 str(port), "--webhook", f"http://127.0.0.1:{web.server_port}/",
                 "--mail-to", "soc@example.org", "--mail-relay", f"127.0.0.1:{mailbox.port}"],
                capture_output=True, text=True, timeout=120, cwd=tmp_path,
            )  # fmt: skip
        finally:
            if smtp is not None:
                smtp.stop()
        assert done.returncode == 0, done.stderr
        return {
            line["domain"]: line["change"] for line in map(json.loads, done.stdout.splitlines())
        }

    try:
        with DnsServer({"army.ml": "@ MX 10 mail.army.ml.\nmail A 127.0.0.1\n"}) as server:
            assert watch(server.nameserver, _Refuser()) == {"army.ml": "new"}
            assert watch(server.nameserver, _Taker()) == {"army.ml": "changed"}
            assert watch(server.nameserver, None) == {"army.ml": "same"}  # unreachable
            assert watch(server.nameserver, _Refuser()) == {"army.ml": "changed"}
    finally:
        web.shutdown()
        mailbox.stop()
    sent = [(c["domain"], c["change"], c["probe"]) for h in _Hook.received for c in h["changes"]]
    assert sent == [("army.ml", "new", "refuses_unknown"), ("army.ml", "changed", "accepts_all"),
                    ("army.ml", "changed", "refuses_unknown")]  # fmt: skip
    mails = [message_from_bytes(m.data, policy=default).get_content() for m in mailbox.messages]
    assert len(mails) == 3 and "changed, now mx (mail to mail.army.ml), takes any" in mails[1]
    assert "changed, now mx (mail to mail.army.ml), refuses unknown recipients" in mails[2]
    dashboard = web_on(db, tmp_path)
    try:
        url = f"http://127.0.0.1:{dashboard.port}"
        admin = ApiClient(url, "admin", first_admin_password(dashboard.log))
        assert "takes any recipient now" in admin.get("/monitor", params={"run": 2}).text
        assert "refuses unknown recipients now" in admin.get("/monitor", params={"run": 4}).text
    finally:
        dashboard.stop()


def test_dask_finds_the_same(planted):
    local = run_monitor(["army.mil", "navy.mil"], settings(planted.nameserver))
    dask = run_monitor(
        ["army.mil", "navy.mil"], settings(planted.nameserver), engine=Engine.DASK, workers=1
    )
    assert [f.to_dict() for f in dask.findings] == [f.to_dict() for f in local.findings]
    assert dask.asked == local.asked > 300
