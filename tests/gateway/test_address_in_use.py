"""An adapter whose listening address is taken stops at once: exit status 1 and one line
that says which listener, where, and why (`typogate serve`'s own case is in test_serve)."""

from __future__ import annotations

import pytest
from mta import run_typogate
from ports import port_in_use


@pytest.mark.parametrize(
    "command, listen, what, why, flags",
    [
        ("policy", "127.0.0.1:{}", "the policy service", "Address already in use", []),
        (
            "milter",
            "inet:{}@127.0.0.1",
            "the milter",
            "libmilter: cannot opensocket (is the address in use?)",
            [],
        ),
        (
            "proxy",
            "127.0.0.1:{}",
            "the SMTP proxy",
            "Address already in use",
            ["--next-hop", "127.0.0.1:25"],
        ),
    ],
)
def test_an_address_in_use_is_a_clear_error(tmp_path, command, listen, what, why, flags):
    with port_in_use() as taken:
        address = listen.format(taken)
        status, said = run_typogate(
            command, "--listen", address, "--profile", "none", *flags, cwd=tmp_path
        )
    assert status == 1
    assert f"cannot run {what} on {address}: {why}" in said
