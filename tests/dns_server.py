"""A real authoritative DNS server (NSD) for tests and benches, on a loopback port.

Give it zones as text, one per origin (``{"army.ml": "@ MX 10 mail.army.ml."}``); each is
served with its own SOA and NS at the apex (added when the text has no SOA), so a name that
is in no zone gets an authoritative NXDOMAIN from the root zone the server also holds. A
resolver pointed at it sees the planted domains as the Internet would show them, and
nothing else: no recursion, no network.

    with DnsServer({"army.ml": "@ MX 10 mail.army.ml."}) as server:
        server.nameserver            # "127.0.0.1:PORT"
        server.load({...})           # new zone contents; returns once they are served

NSD is started in the foreground as a child of the test and stopped by its process id.
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

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
from ports import free_port

NSD = shutil.which("nsd") or "/usr/sbin/nsd"
_TTL = 60


class DnsServer:
    """NSD serving ``zones`` (origin -> zone-file text) and a root zone on 127.0.0.1."""

    def __init__(self, zones: Mapping[str, str], port: int | None = None) -> None:
        if not os.path.exists(NSD):
            raise RuntimeError("NSD is not installed (scripts/setup.d/dns.sh installs it)")
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="typogate-dns-", dir="/tmp"))
        self.process: subprocess.Popen[bytes] | None = None
        self.serial = 0
        self.zones: dict[str, str] = {}
        self._write(zones)

    @property
    def nameserver(self) -> str:
        """``127.0.0.1:PORT``: what ``--nameserver`` takes."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        config = self.root / "nsd.conf"
        self.process = subprocess.Popen(
            [NSD, "-d", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            self._wait_served()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def load(self, zones: Mapping[str, str]) -> None:
        """Serve ``zones`` instead of the current ones; returns once every zone answers
        with its new serial. Changed contents are reloaded (SIGHUP, as an operator
        would); a changed set of zones restarts the server on the same port, since NSD
        reads its zone list only at start."""
        same_names = set(zones) == set(self.zones)
        self._write(zones)
        if self.process is None:
            return
        if same_names:
            os.kill(self.process.pid, signal.SIGHUP)
            self._wait_served()
        else:
            self.stop()
            self.start()

    def __enter__(self) -> DnsServer:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    # --- files -------------------------------------------------------------------------

    def _write(self, zones: Mapping[str, str]) -> None:
        self.serial += 1
        self.zones = {origin.strip(".").lower(): text for origin, text in zones.items()}
        files = self.root / "zones"
        shutil.rmtree(files, ignore_errors=True)
        files.mkdir()
        entries = [("", "root.zone")]
        (files / "root.zone").write_text(self._zone_text("", ""))
        for number, (origin, text) in enumerate(sorted(self.zones.items())):
            name = f"z{number}.zone"
            (files / name).write_text(self._zone_text(origin, text))
            entries.append((origin, name))
        # NSD reloads a zone file whose time changed: make it change even within one tick.
        stamp = time.time() + self.serial
        for file in files.iterdir():
            os.utime(file, (stamp, stamp))
        zone_config = "".join(
            f'zone:\n    name: "{origin or "."}"\n    zonefile: "{files / name}"\n'
            for origin, name in entries
        )
        (self.root / "nsd.conf").write_text(
            "server:\n"
            f"    ip-address: 127.0.0.1@{self.port}\n"
            "    do-ip6: no\n"
            '    username: ""\n'
            '    chroot: ""\n'
            f'    zonesdir: "{self.root}"\n'
            f'    pidfile: "{self.root / "nsd.pid"}"\n'
            '    database: ""\n'
            f'    zonelistfile: "{self.root / "zone.list"}"\n'
            f'    xfrdfile: "{self.root / "xfrd.state"}"\n'
            f'    xfrdir: "{self.root}"\n'
            f'    logfile: "{self.root / "nsd.log"}"\n'
            "    server-count: 1\n"
            "    verbosity: 1\n"
            "    hide-version: yes\n"
            # Response rate limiting (on by default, 200 answers a second per client) is
            # for the Internet; one client asking thousands of names here is the point.
            "    rrl-ratelimit: 0\n"
            "    rrl-whitelist-ratelimit: 0\n"
            "remote-control:\n"
            "    control-enable: no\n" + zone_config
        )

    def _zone_text(self, origin: str, text: str) -> str:
        apex = f"{origin}." if origin else "."
        host = apex.lstrip(".")
        # The serial is the server's generation: _wait_served knows a reload by it.
        return (
            f"$ORIGIN {apex}\n$TTL {_TTL}\n"
            f"@ IN SOA ns.{host} hostmaster.{host} {self.serial} 3600 600 86400 {_TTL}\n"
            f"@ IN NS ns.{host}\n{text}\n"
        )

    # --- readiness ---------------------------------------------------------------------

    def _wait_served(self, timeout: float = 20.0) -> None:
        """Until every zone answers its SOA with the current serial (a reload is async)."""
        deadline = time.monotonic() + timeout
        pending = ["", *self.zones]
        while pending:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"nsd exited: {self._log()}")
            if " error: " in self._log():  # a zone NSD could not read: say so at once
                raise RuntimeError(f"nsd refused a zone: {self._log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"nsd does not serve {pending[0] or '.'!r}: {self._log()}")
            if self._serial_of(pending[0]) == self.serial:
                pending.pop(0)
            else:
                time.sleep(0.02)

    def _serial_of(self, origin: str) -> int | None:
        query = dns.message.make_query(f"{origin}.", dns.rdatatype.SOA)
        try:
            answer = dns.query.udp(query, "127.0.0.1", port=self.port, timeout=0.5)
        except (OSError, dns.exception.Timeout):
            return None
        if answer.rcode() != dns.rcode.NOERROR or not answer.answer:
            return None
        return int(answer.answer[0][0].serial)

    def _log(self) -> str:
        log = self.root / "nsd.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
