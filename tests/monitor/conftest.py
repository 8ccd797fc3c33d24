"""A real DNS server (NSD) serving look-alikes of army.mil planted in every mail state."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dns_server import DnsServer
from lookalike_zone import ZONES


@pytest.fixture(scope="package")
def planted() -> Iterator[DnsServer]:
    with DnsServer(ZONES) as server:
        yield server
