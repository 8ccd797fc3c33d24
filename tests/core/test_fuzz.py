"""Fuzzing (Hypothesis) of address reading and of the Postfix policy protocol reader, bounded
to well under a minute; bench/fuzz.py runs the same properties far longer and counts.

Properties:
* reading any text raises nothing but :class:`InvalidAddress` (the documented error);
* an address whose destination, as Postfix delivers it, is a typo domain is never allowed
  (it is refused, or it cannot be read, which the adapters answer with a 450);
* a fresh typo domain in any spelling gets the same verdict as its plain form;
* the policy service answers every request, garbage included, with one well-formed
  ``action=`` line, refuses every spelled typo recipient, and keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ports import free_port, wait_for_port
from spelling import (
    OWN_HOSTS,
    PROTECTED,
    RAW_REQUEST,
    TYPOS,
    fresh_typo,
    request_bytes,
    spelled_address,
)

from typogate import Action, Config, Guard, InvalidAddress
from typogate.domains import read_destination
from typogate.gateway.gatekeeper import Gatekeeper
from typogate.gateway.policy_service import PolicyService
from typogate.vocabulary import Adapter

# Bounded for the suite: a few hundred examples a property (bench/fuzz.py sets more through
# TYPOGATE_FUZZ_EXAMPLES), no deadline per example (the machine is shared), no example
# database left behind.
FUZZ = settings(
    max_examples=int(os.environ.get("TYPOGATE_FUZZ_EXAMPLES", "300")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _guard(own: tuple[str, ...] | None) -> Guard:
    gateway = {} if own is None else {"own_domains": list(own)}
    return Guard(
        Config.from_mapping({"domains": {"protected": list(PROTECTED)}, "gateway": gateway})
    )


GUARD = _guard(OWN_HOSTS)  # the MTA's own domains configured
GUARD_UNKNOWN = _guard(None)  # the default: own domains unknown

ANY_TEXT = st.text(max_size=400) | st.text(st.sampled_from('@%!"\\(),.<>:[] ax\u200b'))


@FUZZ
@given(ANY_TEXT)
def test_reading_any_text_raises_only_the_documented_error(text):
    for own in (frozenset(OWN_HOSTS), None):
        try:
            read_destination(text, own)
        except InvalidAddress as error:
            assert error.reason  # a sentence for the log line
    for guard in (GUARD, GUARD_UNKNOWN):
        with contextlib.suppress(InvalidAddress):
            guard.evaluate(text)


@FUZZ
@given(st.sampled_from(TYPOS).flatmap(spelled_address))
def test_a_spelled_typo_destination_is_never_allowed(address):
    for guard in (GUARD, GUARD_UNKNOWN):
        try:
            verdict = guard.evaluate(address)
        except InvalidAddress:
            continue  # unreadable: the adapters answer 450, never a pass
        assert verdict.action is not Action.ALLOW, (address, verdict)


PLAIN_LOCAL = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00,"), max_size=60
).filter(lambda text: not text.lstrip().startswith("@"))


@FUZZ
@given(
    fresh_typo().flatmap(
        lambda domain: st.tuples(st.just(domain), spelled_address(domain, PLAIN_LOCAL))
    )
)
def test_a_fresh_typo_in_any_spelling_gets_the_verdict_of_its_plain_form(pair):
    domain, address = pair
    try:
        plain = GUARD.evaluate(f"john@{domain}")
    except InvalidAddress:
        return  # the slip made something that is no domain name (a leading hyphen, ...)
    spelled = GUARD.evaluate(address)
    assert (spelled.domain, spelled.action, spelled.reason, spelled.suggestion) == (
        plain.domain,
        plain.action,
        plain.reason,
        plain.suggestion,
    ), address


@pytest.fixture(scope="module")
def policy_port() -> Iterator[int]:
    """A real PolicyService on a loopback socket, served by its own event loop thread."""
    loop = asyncio.new_event_loop()
    service = PolicyService(Gatekeeper(GUARD, Adapter.POLICY))
    port = free_port()
    server = loop.run_until_complete(service.start("127.0.0.1", port))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    wait_for_port(port)
    yield port

    async def close() -> None:
        server.close()
        # The connections still open end when their clients' EOF is read; none is left
        # cancelled mid-read (asyncio would print the cancellation at exit).
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        if tasks:
            await asyncio.wait(tasks, timeout=10)

    asyncio.run_coroutine_threadsafe(close(), loop).result(timeout=10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    loop.close()


class _Client:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.buffer = b""

    def ask(self, data: bytes) -> str:
        self.sock.sendall(data)
        while b"\n\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed after {data[:80]!r}")
            self.buffer += chunk
        answer, self.buffer = self.buffer.split(b"\n\n", 1)
        assert answer.startswith(b"action=") and b"\n" not in answer, answer
        return answer[len(b"action=") :].decode()


RCPT = {"request": "smtpd_access_policy", "protocol_state": "RCPT", "sender": "a@example.org"}
ATTRIBUTE = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\n="), min_size=1, max_size=30
)


@FUZZ
@given(
    st.one_of(
        RAW_REQUEST,
        st.dictionaries(ATTRIBUTE, ATTRIBUTE.filter(lambda v: "\n" not in v), max_size=8).map(
            lambda extra: request_bytes({**RCPT, **extra})
        ),
    )
)
def test_the_policy_service_answers_any_request_and_keeps_serving(policy_port, data):
    client = _Client(policy_port)
    client.ask(data)  # one well-formed answer, whatever was asked
    assert client.ask(request_bytes({**RCPT, "recipient": "john@army.ml"})).startswith("550 ")
    client.sock.close()


@FUZZ
@given(st.sampled_from(TYPOS).flatmap(spelled_address))
def test_the_policy_service_refuses_every_spelled_typo(policy_port, address):
    client = _Client(policy_port)
    answer = client.ask(request_bytes({**RCPT, "recipient": address}))
    assert answer.startswith(("550 ", "450 ")), (address, answer)
    client.sock.close()
