"""NSD, a real authoritative DNS server, serving zones on a loopback port for the zone test.

Same interface as ``tests/dns_server.py`` of the monitor's branch (``DnsServer(zones)``, a
context manager, ``.port``, ``.nameserver``): once that helper is on main, the zone test
imports it instead and this file goes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import dns.exception
import dns.message
import dns.query
import dns.rdatatype
from ports import free_port

NSD = shutil.which("nsd") or "/usr/sbin/nsd"


class DnsServer:
    """NSD serving ``zones`` (origin -> zone-file text, SOA and NS added) on 127.0.0.1."""

    def __init__(self, zones: Mapping[str, str]) -> None:
        if not os.path.exists(NSD):
            raise RuntimeError("NSD is not installed (scripts/setup.d/sink.sh installs it)")
        self.port = free_port()
        self.zones = {origin.strip(".").lower(): text for origin, text in zones.items()}
        self.root = Path(tempfile.mkdtemp(prefix="typogate-sink-dns-", dir="/tmp"))
        self.process: subprocess.Popen[bytes] | None = None
        config = [
            "server:",
            f"    ip-address: 127.0.0.1@{self.port}",
            "    do-ip6: no",
            '    username: ""',
            '    chroot: ""',
            f'    zonesdir: "{self.root}"',
            f'    pidfile: "{self.root / "nsd.pid"}"',
            f'    zonelistfile: "{self.root / "zone.list"}"',
            f'    xfrdfile: "{self.root / "xfrd.state"}"',
            f'    logfile: "{self.root / "nsd.log"}"',
            "    server-count: 1",
            "remote-control:",
            "    control-enable: no",
        ]
        for number, (origin, text) in enumerate(sorted(self.zones.items())):
            file = self.root / f"z{number}.zone"
            file.write_text(
                f"$ORIGIN {origin}.\n$TTL 60\n"
                f"@ IN SOA ns.{origin}. hostmaster.{origin}. 1 3600 600 86400 60\n"
                f"@ IN NS ns.{origin}.\n{text}\n"
            )
            config += ["zone:", f'    name: "{origin}"', f'    zonefile: "{file}"']
        (self.root / "nsd.conf").write_text("\n".join(config) + "\n")

    @property
    def nameserver(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> DnsServer:
        self.process = subprocess.Popen(
            [NSD, "-d", "-c", str(self.root / "nsd.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        for origin in self.zones:
            while not self._serves(origin):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = (self.root / "nsd.log").read_text(errors="replace")
                    self.__exit__(None, None, None)
                    raise RuntimeError(f"nsd does not serve {origin}: {log[-2000:]}")
                time.sleep(0.05)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)

    def _serves(self, origin: str) -> bool:
        query = dns.message.make_query(f"{origin}.", dns.rdatatype.SOA)
        try:
            answer = dns.query.udp(query, "127.0.0.1", port=self.port, timeout=0.5)
        except (OSError, dns.exception.Timeout):
            return False
        return bool(answer.answer)
