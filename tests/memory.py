"""What a process holds in memory, as Linux's ``/proc/PID/status`` says: the one reading
of it for the tests that bound a process's memory and the benches that report it."""

from __future__ import annotations

from pathlib import Path


def memory_mib(pid: int | str = "self", field: str = "VmRSS") -> float:
    """Process ``pid``'s ``field`` in MiB: ``VmRSS``, what it holds now, or ``VmHWM``,
    the most it held at once since it started."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {field} in /proc/{pid}/status")
