"""How long a stop takes: seconds from SIGTERM to exit for ``typogate policy`` and
``typogate serve --no-milter`` while clients stay connected (Postfix keeps its policy
connections open while idle, a browser its HTTP connection), and with ``--against REV``
the same for another revision's ``src`` beside, in one run.

    .venv/bin/python bench/stop.py [--rounds 3] [--against e5f9cad] [--python PATH] [--json]

``--python`` names the interpreter to run typogate with (its environment must have
typogate's dependencies, e.g. a virtualenv of another Python version made with
``pip install -e '.[milter]'``); each revision's ``src`` comes first on its ``PYTHONPATH``.
The variants take turns for ``--rounds`` rounds and each reports its median.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from trees import print_medians, source_trees, tree_arguments, typogate_code

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from ports import free_port, wait_for_port  # noqa: E402

CASES = {
    "policy, an idle policy client": (["policy", "--listen", "127.0.0.1:{policy}"], ["policy"]),
    "serve, idle policy and web clients": (
        ["serve", "--no-milter", "--config", "{config}"],
        ["policy", "web"],
    ),
}
REQUEST = (
    b"request=smtpd_access_policy\nprotocol_state=RCPT\n"
    b"sender=alice@example.org\nrecipient=john@army.ml\n\n"
)


def _stop_seconds(python: str, src: Path, words: list[str], idle: list[str], folder: Path) -> float:
    """Start typogate with ``words``, ask it once, keep ``idle`` clients connected, SIGTERM
    it: the seconds until it exited."""
    ports = {"policy": free_port(), "web": free_port()}
    config = folder / "typogate.toml"
    config.write_text(
        f'[gateway]\npolicy_listen = "127.0.0.1:{ports["policy"]}"\n'
        f'[web]\nlisten = "127.0.0.1:{ports["web"]}"\n'
    )
    argv = [word.format(config=config, **ports) for word in words]
    process = subprocess.Popen(
        [python, "-c", typogate_code(argv)],
        env={**os.environ, "PYTHONPATH": str(src)},
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for name in idle:
            wait_for_port(ports[name], timeout=60)
        clients = [socket.create_connection(("127.0.0.1", ports[name])) for name in idle]
        clients[0].sendall(REQUEST)
        if not clients[0].recv(4096).startswith(b"action="):
            raise RuntimeError("the policy service did not answer")
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        return time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tree_arguments(parser, rounds=3)
    parser.add_argument("--python", default=sys.executable, help="the interpreter to run with")
    args = parser.parse_args()
    version = subprocess.run(
        [args.python, "-c", "import sys; print(sys.version.split()[0])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with source_trees(args.against) as (scratch, trees):
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.rounds):
            for name, (words, idle) in CASES.items():
                for tree, src in trees.items():
                    folder = Path(tempfile.mkdtemp(dir=scratch))  # a store of its own
                    seconds = _stop_seconds(args.python, src, words, idle, folder)
                    times.setdefault((name, tree), []).append(seconds)
    title = f"typogate stop: SIGTERM to exit, median of {args.rounds} (Python {version})"
    print_medians(title, "case", CASES, trees, times, as_json=args.json, python=version)


if __name__ == "__main__":
    main()
