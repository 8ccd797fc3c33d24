"""Gateway throughput: the policy protocol under load, and mail through a real Postfix.

    .venv/bin/python bench/gateway.py [--seconds 5] [--json]

1. Policy protocol: a load generator in a separate process opens 1, 16 and 64 connections
   to the server and sends requests one at a time per connection, as Postfix does, for a
   bounded time. Side by side: typogate's policy service and a no-op policy server built
   on the same asyncio server code that answers DUNNO without judging (the ceiling).
2. End to end: smtp-source pushes messages into a throwaway Postfix that relays to
   smtp-sink, with and without typogate's policy service in smtpd_recipient_restrictions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "tests"))
import scenario  # noqa: E402
from mta import Postfix, postfix_root  # noqa: E402
from ports import free_port, stop_servers_on_sigterm, wait_for_port  # noqa: E402

CONNECTIONS = (1, 16, 64)


def _recipients() -> list[str]:
    """A realistic mix: mostly real domains, some repeated, a few typos."""
    rng = random.Random(7)
    sc = scenario.gov_mil_scenario(per_class=50)
    domains = sc.protected + sc.known + sc.unseen[:3000] + [t.domain for t in sc.typos]
    return [f"user{rng.randrange(1000)}@{rng.choice(domains)}" for _ in range(20_000)]


def _request(recipient: str) -> bytes:
    return (
        "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
        "client_address=192.0.2.7\nclient_name=mail.example.org\nhelo_name=mail.example.org\n"
        f"sender=alice@example.org\nrecipient={recipient}\nrecipient_count=0\n"
        "queue_id=4F2A81C0\ninstance=1.2.3\nsize=1234\n\n"
    ).encode()


async def _client(port: int, requests: list[bytes], deadline: float, latencies: list[float]) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    done = 0
    index = 0
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        writer.write(requests[index])
        await reader.readuntil(b"\n\n")
        latencies.append(time.perf_counter() - started)
        done += 1
        index = (index + 1) % len(requests)
    writer.close()
    return done


def _load(port: int, connections: int, seconds: float, queue: multiprocessing.Queue) -> None:
    requests = [_request(r) for r in _recipients()]

    async def run() -> tuple[int, list[float]]:
        latencies: list[float] = []
        deadline = time.perf_counter() + seconds
        counts = await asyncio.gather(
            *(
                _client(port, requests[i::connections] or requests, deadline, latencies)
                for i in range(connections)
            )
        )
        return sum(counts), latencies

    started = time.perf_counter()
    total, latencies = asyncio.run(run())
    elapsed = time.perf_counter() - started
    latencies.sort()
    queue.put(
        {
            "requests": total,
            "per_second": total / elapsed,
            "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
        }
    )


def measure(port: int, connections: int, seconds: float) -> dict:
    """Run the load generator in a separate process (its own core) and collect its figures."""
    queue: multiprocessing.Queue = multiprocessing.Queue()
    worker = multiprocessing.Process(target=_load, args=(port, connections, seconds, queue))
    worker.start()
    result = queue.get(timeout=seconds + 120)
    worker.join()
    return result


def _serve(kind: str, port: int, protected: Path, known: Path) -> None:
    """Server process: typogate's policy service, or the no-op one on the same code."""
    from typogate.gateway.gatekeeper import Gatekeeper
    from typogate.gateway.policy_service import PolicyService
    from typogate.policy import Config, Guard
    from typogate.vocabulary import Adapter

    class NoOpPolicyService(PolicyService):
        async def answer(self, request: dict[str, str]) -> str:
            return "DUNNO"

    config = Config().with_lists([protected], [known])
    service_type = PolicyService if kind == "typogate" else NoOpPolicyService
    service = service_type(Gatekeeper(Guard(config), Adapter.POLICY))

    async def run() -> None:
        server = await service.start("127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(run())


def policy_protocol(seconds: float, work: Path) -> dict:
    sc = scenario.gov_mil_scenario(per_class=50)
    protected, known = work / "protected.txt", work / "known.txt"
    protected.write_text("\n".join(sc.protected) + "\n")
    known.write_text("\n".join(sc.known) + "\n")
    results: dict = {}
    for kind in ("no-op", "typogate"):
        port = free_port()
        server = multiprocessing.Process(target=_serve, args=(kind, port, protected, known))
        server.start()
        try:
            wait_for_port(port, timeout=60)
            results[kind] = {n: measure(port, n, seconds) for n in CONNECTIONS}
        finally:
            server.terminate()
            server.join()
    return results


def _smtp_source(port: int, messages: int, sessions: int) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            "smtp-source",
            "-s",
            str(sessions),
            "-m",
            str(messages),
            "-l",
            "1024",
            "-f",
            "alice@example.org",
            "-t",
            "jane@army.mil",
            f"127.0.0.1:{port}",
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return time.perf_counter() - started


def end_to_end(messages: int, work: Path) -> dict:
    if shutil.which("smtp-source") is None:
        return {}
    results = {}
    sink_port = free_port()
    sink = subprocess.Popen(
        ["smtp-sink", "-u", "nobody", "-c", f"127.0.0.1:{sink_port}", "1000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    policy_port = free_port()
    policy = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("typogate")),
            "policy",
            "--listen",
            f"127.0.0.1:{policy_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=work,
    )
    try:
        wait_for_port(sink_port)
        wait_for_port(policy_port, timeout=60)
        for label, restrictions in (
            ("without typogate", "permit_mynetworks"),
            (
                "with typogate",
                f"check_policy_service {{ inet:127.0.0.1:{policy_port}, default_action=DUNNO }}",
            ),
        ):
            postfix = Postfix(
                postfix_root(),
                free_port(),
                sink_port,
                {"smtpd_recipient_restrictions": restrictions, "default_process_limit": "100"},
            )
            try:
                postfix.start()
                _smtp_source(postfix.smtpd_port, 50, 5)  # warm up the smtpd processes
                seconds = _smtp_source(postfix.smtpd_port, messages, 16)
                results[label] = {"messages": messages, "per_second": messages / seconds}
            finally:
                postfix.remove()
    finally:
        for process in (sink, policy):
            process.terminate()
            process.wait()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="load time per measurement")
    parser.add_argument("--messages", type=int, default=2000, help="messages end to end")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    console = Console(stderr=args.json, width=120)
    work = Path(scenario.ROOT / "bench" / "out" / "gateway")
    work.mkdir(parents=True, exist_ok=True)
    console.print("[dim]policy protocol load…[/]")
    protocol = policy_protocol(args.seconds, work)
    console.print("[dim]end to end through Postfix…[/]")
    flow = end_to_end(args.messages, work)
    if args.json:
        print(json.dumps({"policy_protocol": protocol, "end_to_end": flow}, indent=2))
        return
    table = Table(title="Postfix policy protocol over loopback (load from a separate process)")
    for column in (
        "connections",
        "no-op req/s",
        "typogate req/s",
        "ratio",
        "typogate p50 ms",
        "typogate p99 ms",
        "no-op p99 ms",
    ):
        table.add_column(column, justify="right")
    for n in CONNECTIONS:
        noop, ours = protocol["no-op"][n], protocol["typogate"][n]
        table.add_row(
            str(n),
            f"{noop['per_second']:,.0f}",
            f"{ours['per_second']:,.0f}",
            f"{ours['per_second'] / noop['per_second']:.0%}",
            f"{ours['p50_ms']:.2f}",
            f"{ours['p99_ms']:.2f}",
            f"{noop['p99_ms']:.2f}",
        )
    console.print(table)
    if flow:
        e2e = Table(
            title=f"End to end: smtp-source ({args.messages} messages, 16 sessions) -> "
            "Postfix -> smtp-sink"
        )
        for column in ("path", "messages/s", "ratio"):
            e2e.add_column(column, justify="right")
        base = flow["without typogate"]["per_second"]
        for label, row in flow.items():
            e2e.add_row(label, f"{row['per_second']:,.0f}", f"{row['per_second'] / base:.0%}")
        console.print(e2e)


if __name__ == "__main__":
    stop_servers_on_sigterm()
    main()
