"""The fuzz properties of tests/core/test_fuzz.py run far longer: examples run and failures
found per property, and, side by side on the same spelled typo addresses, how many the
reading typogate had before (an RFC 5322 validator, email-validator, whose refusal the
adapters answered with DUNNO) lets through, against typogate's destination reading.

    .venv/bin/python bench/fuzz.py                  # 20,000 examples a property
    .venv/bin/python bench/fuzz.py --examples 2000 --json
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))
from ports import free_port, wait_for_port  # noqa: E402

from typogate import Action, InvalidAddress  # noqa: E402
from typogate.domains import parse_address  # noqa: E402
from typogate.gateway.gatekeeper import Gatekeeper  # noqa: E402
from typogate.gateway.policy_service import PolicyService  # noqa: E402
from typogate.vocabulary import Adapter  # noqa: E402


def _fuzz_module(examples: int) -> Any:
    """tests/core/test_fuzz.py with ``examples`` examples a property."""
    os.environ["TYPOGATE_FUZZ_EXAMPLES"] = str(examples)
    path = BENCH.parent / "tests" / "core" / "test_fuzz.py"
    spec = importlib.util.spec_from_file_location("typogate_fuzz", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _policy_service(guard: Any) -> tuple[int, Callable[[], None]]:
    """A real PolicyService on a loopback port in its own event loop thread, and its stop."""
    loop = asyncio.new_event_loop()
    port = free_port()
    service = PolicyService(Gatekeeper(guard, Adapter.POLICY))
    server = loop.run_until_complete(service.start("127.0.0.1", port))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    wait_for_port(port)

    async def close() -> None:
        server.close()
        # The connections still open end when their clients' EOF is read; none is left
        # cancelled mid-read (asyncio would print the cancellation at exit).
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        if tasks:
            await asyncio.wait(tasks, timeout=10)

    def stop() -> None:
        asyncio.run_coroutine_threadsafe(close(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()

    return port, stop


class Counted:
    """Wraps a Hypothesis test's inner function (``test.hypothesis.inner_test``, the hook
    Hypothesis offers for this) to count the examples it ran."""

    def __init__(self, test: Any, also: Callable[..., None] | None = None) -> None:
        self.examples = 0
        inner = test.hypothesis.inner_test
        also_run = also

        def counted(*args: Any, **kwargs: Any) -> None:
            self.examples += 1
            if also_run is not None:
                also_run(*args, **kwargs)
            inner(*args, **kwargs)

        test.hypothesis.inner_test = counted


class OldReading:
    """typogate's reading before issue 15: the RFC validator's parse, its refusal answered
    DUNNO by the adapters (a pass), the domain it read judged."""

    def __init__(self, guard: Any) -> None:
        self.guard = guard
        self.addresses = 0
        self.through = 0

    def __call__(self, address: str, **_: Any) -> None:
        self.addresses += 1
        try:
            verdict = self.guard.judge_domain(parse_address(address).domain.ascii)
        except InvalidAddress:
            self.through += 1
            return
        if verdict.action is Action.ALLOW:
            self.through += 1


class NewReading(OldReading):
    """typogate's destination reading: an unreadable address is answered 450, not a pass."""

    def __call__(self, address: str, **_: Any) -> None:
        self.addresses += 1
        try:
            if self.guard.evaluate(address).action is Action.ALLOW:
                self.through += 1
        except InvalidAddress:
            pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=20_000, help="examples a property")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args()
    # Every unreadable request logs a warning by design; the counts are the output here.
    logging.getLogger("typogate").setLevel(logging.ERROR)
    fuzz = _fuzz_module(args.examples)
    port, stop = _policy_service(fuzz.GUARD)
    old, new = OldReading(fuzz.GUARD), NewReading(fuzz.GUARD)
    properties: list[tuple[str, Any, dict[str, Any], Callable[..., None] | None]] = [
        (
            "reading any text: only InvalidAddress",
            fuzz.test_reading_any_text_raises_only_the_documented_error,
            {},
            None,
        ),
        (
            "a spelled typo destination is never allowed",
            fuzz.test_a_spelled_typo_destination_is_never_allowed,
            {},
            lambda address: (old(address), new(address)),
        ),
        (
            "a fresh typo in any spelling: its plain verdict",
            fuzz.test_a_fresh_typo_in_any_spelling_gets_the_verdict_of_its_plain_form,
            {},
            None,
        ),
        (
            "policy service: any request answered, serving on",
            fuzz.test_the_policy_service_answers_any_request_and_keeps_serving,
            {"policy_port": port},
            None,
        ),
        (
            "policy service: every spelled typo refused",
            fuzz.test_the_policy_service_refuses_every_spelled_typo,
            {"policy_port": port},
            None,
        ),
    ]
    rows = []
    try:
        for name, test, fixtures, also in properties:
            counter = Counted(test, also)
            started = time.perf_counter()
            failure = ""
            try:
                test(**fixtures)
            except Exception as error:  # the falsifying example, shrunk, is the finding
                failure = f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"
            seconds = time.perf_counter() - started
            rows.append(
                {
                    "property": name,
                    "examples": counter.examples,
                    "failures": 1 if failure else 0,
                    "first_failure": failure,
                    "seconds": round(seconds, 1),
                }
            )
    finally:
        stop()
    readers = [
        {
            "reader": "typogate: destination as Postfix delivers it",
            "addresses": new.addresses,
            "let_through": new.through,
        },
        {
            "reader": "before: email-validator parse, refusal = DUNNO",
            "addresses": old.addresses,
            "let_through": old.through,
        },
    ]
    if args.json:
        print(json.dumps({"properties": rows, "spelled_typos": readers}))
        return 0 if not any(row["failures"] for row in rows) else 1
    console = Console()
    table = Table(title=f"Fuzzing, up to {args.examples:,} examples a property")
    for column in ("property", "examples", "failures", "examples/s", "first failure"):
        table.add_column(
            column, justify="right" if column in ("examples", "failures", "examples/s") else "left"
        )
    for row in rows:
        rate = row["examples"] / row["seconds"] if row["seconds"] else 0.0
        table.add_row(
            row["property"],
            f"{row['examples']:,}",
            str(row["failures"]),
            f"{rate:,.0f}",
            row["first_failure"] or "-",
        )
    console.print(table)
    side = Table(title="Spelled typo addresses (same examples) let through, side by side")
    for column in ("reader", "addresses", "let through", "share"):
        side.add_column(column, justify="left" if column == "reader" else "right")
    for reader in readers:
        share = reader["let_through"] / reader["addresses"] if reader["addresses"] else 0.0
        side.add_row(
            reader["reader"],
            f"{reader['addresses']:,}",
            f"{reader['let_through']:,}",
            f"{share:.1%}",
        )
    console.print(side)
    return 0 if not any(row["failures"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
