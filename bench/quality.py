"""Quality and whole-process speed of typogate against its peers, side by side in one run.

    .venv/bin/python bench/quality.py            # all tools (installs peers first)
    .venv/bin/python bench/quality.py --only typogate --json

Each tool runs as ONE process per data set over all its cases (start-up and index build
included), given the same protected list. Data sets: the .gov/.mil scenario of
bench/scenario.py, the peers' own test pairs and controls, and the typo domains known to
have received real mail. Writes bench/out/quality.json and bench/out/typogate_misses.tsv.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scenario  # noqa: E402

BENCH = Path(__file__).resolve().parent
PEERS = BENCH / ".peers"
OUT = BENCH / "out"
TYPOGATE = Path(sys.executable).with_name("typogate")
TOOLS = ["typogate", "symspellpy", "dnstwist", "mailcheck", "zootools", "email-misspelled"]


@dataclass
class Answer:
    flagged: bool
    suggestion: str | None


@dataclass
class Run:
    answers: dict[str, Answer]
    seconds: float  # wall time of the one process over all cases
    startup: float  # wall time of the same process with no cases (start-up + index build)
    # typogate only: the same number of lines, every one a protected or known domain, which
    # is answered without a candidate search. What the run costs around the engine (start-up,
    # parsing, verdicts, JSON): no faster engine can bring the whole process below it.
    floor: float | None = None


def _run_typogate(protected: list[str], known: list[str], cases: list[str], work: Path) -> Run:
    (work / "protected.txt").write_text("\n".join(protected) + "\n", encoding="utf-8")
    (work / "known.txt").write_text("\n".join(known) + "\n", encoding="utf-8")
    command = [str(TYPOGATE), "check", "--json", "--protect", str(work / "protected.txt")]
    if known:
        command += ["--known", str(work / "known.txt")]

    def once(batch: list[str]) -> tuple[list[dict], float]:
        text = "".join(f"x@{case}\n" for case in batch) or "x@example.org\n"
        started = time.perf_counter()
        done = subprocess.run(command, input=text, capture_output=True, text=True, check=True)
        elapsed = time.perf_counter() - started
        return [json.loads(line) for line in done.stdout.splitlines()], elapsed

    rows, seconds = once(cases)
    _, startup = once([])
    real = protected + known
    _, floor = once([real[i % len(real)] for i in range(len(cases))] if real else [])
    answers = {}
    for case, row in zip(cases, rows, strict=True):
        flagged = row["action"] not in ("allow", "invalid")
        answers[case] = Answer(flagged, row["suggestion"] if flagged else None)
    return Run(answers, seconds, startup, floor)


def _run_peer(tool: str, protected: list[str], cases: list[str], work: Path) -> Run:
    if tool in ("symspellpy", "dnstwist"):
        command = [
            str(PEERS / "venv" / "bin" / "python"),
            str(BENCH / "peers" / "py_peer.py"),
            tool,
        ]
    else:
        command = ["node", str(BENCH / "peers" / "js_peer.mjs"), tool]

    def once(batch: list[str]) -> tuple[list[dict], float]:
        job = work / f"{tool}.json"
        job.write_text(json.dumps({"domains": protected, "cases": batch}), encoding="utf-8")
        started = time.perf_counter()
        done = subprocess.run(
            [*command, str(job)], capture_output=True, text=True, check=True, cwd=PEERS
        )
        elapsed = time.perf_counter() - started
        return [json.loads(line) for line in done.stdout.splitlines() if line.strip()], elapsed

    rows, seconds = once(cases)
    # dnstwist spends minutes generating permutations: its start-up is not measured twice.
    startup = float("nan") if tool == "dnstwist" else once([])[1]
    answers = {row["domain"]: Answer(row["flagged"], row["suggestion"]) for row in rows}
    return Run(answers, seconds, startup)


def run_tool(tool: str, protected: list[str], known: list[str], cases: list[str]) -> Run:
    with tempfile.TemporaryDirectory() as folder:
        if tool == "typogate":
            return _run_typogate(protected, known, cases, Path(folder))
        return _run_peer(tool, protected, cases, Path(folder))


def _rate(hits: int, total: int) -> float:
    return hits / total if total else float("nan")


def score_scenario(run: Run, sc: scenario.Scenario) -> dict:
    by_class: dict[str, list[bool]] = defaultdict(list)
    right = unambiguous = 0
    for typo in sc.typos:
        answer = run.answers[typo.domain]
        by_class[typo.cls].append(answer.flagged)
        if not typo.ambiguous:
            unambiguous += 1
            right += answer.suggestion == typo.intended
    flagged_real = sum(run.answers[d].flagged for d in sc.protected + sc.known)
    flagged_unseen = sum(run.answers[d].flagged for d in sc.unseen)
    hits = sum(sum(v) for v in by_class.values())
    working = run.seconds - run.startup  # the per-case work, start-up set apart
    return {
        "recall": _rate(hits, len(sc.typos)),
        "recall_by_class": {cls: _rate(sum(v), len(v)) for cls, v in sorted(by_class.items())},
        "suggestion_accuracy": _rate(right, unambiguous),
        "false_alarms_protected_known": _rate(flagged_real, len(sc.protected) + len(sc.known)),
        "false_alarm_count": flagged_real,
        "unseen_alert_rate": _rate(flagged_unseen, len(sc.unseen)),
        "cases": len(run.answers),
        "seconds": run.seconds,
        "verdicts_per_second": len(run.answers) / run.seconds,
        "startup_seconds": run.startup,
        "microseconds_per_verdict_after_startup": 1e6 * working / len(run.answers),
        "floor_seconds": run.floor,
    }


def score_pairs(run: Run, typos: list[scenario.Typo], controls: list[str]) -> dict:
    hits = sum(run.answers[t.domain].flagged for t in typos)
    right = sum(run.answers[t.domain].suggestion == t.intended for t in typos)
    alerts = sum(run.answers[d].flagged for d in controls)
    return {
        "recall": _rate(hits, len(typos)),
        "suggestion_accuracy": _rate(right, len(typos)),
        "control_alert_rate": _rate(alerts, len(controls)) if controls else None,
        "cases": len(run.answers),
        "seconds": run.seconds,
    }


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", choices=TOOLS, help="run only these tools")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    tools = args.only or TOOLS
    console = Console(stderr=args.json, width=150)
    if any(tool != "typogate" for tool in tools):
        console.print("[dim]installing peers from their registries (bench/peers/setup.sh)…[/]")
        subprocess.run(["bash", str(BENCH / "peers" / "setup.sh")], check=True)

    sc = scenario.gov_mil_scenario()
    scenario_cases = list(
        dict.fromkeys([t.domain for t in sc.typos] + sc.protected + sc.known + sc.unseen)
    )
    peer_typos, controls, peer_protected, skipped = scenario.peer_cases()
    peer_cases = list(dict.fromkeys([t.domain for t in peer_typos] + controls))
    leak_typos, leak_protected = scenario.known_leak_cases(sc.protected)

    results: dict[str, dict] = {}
    misses: list[str] = []
    for tool in tools:
        console.print(f"[bold]{tool}[/]: scenario ({len(scenario_cases)} cases)…")
        run = run_tool(tool, sc.protected, sc.known, scenario_cases)
        results[tool] = {"scenario": score_scenario(run, sc)}
        if tool == "typogate":
            for typo in sc.typos:
                answer = run.answers[typo.domain]
                if not answer.flagged or (
                    not typo.ambiguous and answer.suggestion != typo.intended
                ):
                    kind = "wrong_suggestion" if answer.flagged else "miss"
                    misses.append(
                        f"{kind}\t{typo.cls}\t{typo.domain}\t{typo.intended}\t{answer.suggestion}"
                    )
            for domain in sc.unseen + sc.protected + sc.known:
                if run.answers[domain].flagged:
                    misses.append(
                        f"false_alarm\treal\t{domain}\t\t{run.answers[domain].suggestion}"
                    )
        console.print(f"[bold]{tool}[/]: peer pairs ({len(peer_cases)} cases)…")
        run = run_tool(tool, peer_protected, [], peer_cases)
        results[tool]["peer_pairs"] = score_pairs(run, peer_typos, controls)
        if tool == "typogate":
            for typo in peer_typos:
                answer = run.answers[typo.domain]
                if not answer.flagged:
                    misses.append(
                        f"miss\tpeer\t{typo.domain}\t{typo.intended}\t{answer.suggestion}"
                    )
            for domain in controls:
                if run.answers[domain].flagged:
                    misses.append(
                        f"false_alarm\tcontrol\t{domain}\t\t{run.answers[domain].suggestion}"
                    )
        run = run_tool(tool, leak_protected, [], [t.domain for t in leak_typos])
        results[tool]["known_leaks"] = score_pairs(run, leak_typos, [])

    OUT.mkdir(exist_ok=True)
    meta = {
        "skipped_peer_rows": skipped,
        "scenario": {
            "protected": len(sc.protected),
            "known": len(sc.known),
            "unseen": len(sc.unseen),
            "typos": len(sc.typos),
            "ambiguous": sum(t.ambiguous for t in sc.typos),
        },
    }
    (OUT / "quality.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    if "typogate" in tools:
        header = "kind\tcase_set\tdomain\tintended\tsuggestion"
        (OUT / "typogate_misses.tsv").write_text("\n".join([header, *misses]) + "\n")
    if args.json:
        print(json.dumps({"meta": meta, "results": results}, indent=2))
        return
    _print(console, results, meta, sc)


def _print(console: Console, results: dict, meta: dict, sc: scenario.Scenario) -> None:
    m = meta["scenario"]
    table = Table(
        title=f".gov/.mil scenario: {m['protected']} protected, {m['known']} known, "
        f"{m['unseen']} unseen real, {m['typos']} typos ({m['ambiguous']} ambiguous)"
    )
    for column in (
        "tool",
        "recall",
        "suggestion ok",
        "false alarms P+K",
        "unseen alerts",
        "verdicts/s",
        "start-up+build s",
        "µs/verdict after start-up",
        "speed vs symspellpy",
    ):
        table.add_column(column, justify="right" if column != "tool" else "left")
    base = results.get("symspellpy", {}).get("scenario", {}).get("verdicts_per_second")
    for tool, r in results.items():
        s = r["scenario"]
        ratio = f"{s['verdicts_per_second'] / base:.2f}×" if base else "—"
        table.add_row(
            tool,
            _pct(s["recall"]),
            _pct(s["suggestion_accuracy"]),
            f"{_pct(s['false_alarms_protected_known'])} ({s['false_alarm_count']})",
            _pct(s["unseen_alert_rate"]),
            f"{s['verdicts_per_second']:,.0f}",
            f"{s['startup_seconds']:.2f}",
            f"{s['microseconds_per_verdict_after_startup']:.1f}",
            ratio,
        )
    console.print(table)
    floor = results.get("typogate", {}).get("scenario", {}).get("floor_seconds")
    if floor:
        cases = results["typogate"]["scenario"]["cases"]
        versus = f", {cases / floor / base:.2f}× symspellpy" if base else ""
        console.print(
            f"typogate's floor: {cases:,} lines that need no candidate search (all protected or "
            f"known) take {floor:.2f} s ({cases / floor:,.0f} verdicts/s{versus}). That is "
            "start-up, parsing, verdicts and JSON: the part no faster engine removes."
        )
    classes = sorted({c for r in results.values() for c in r["scenario"]["recall_by_class"]})
    per_class = Table(title="recall per typo class (scenario)")
    per_class.add_column("class")
    for tool in results:
        per_class.add_column(tool, justify="right")
    for cls in classes:
        per_class.add_row(
            cls, *(_pct(r["scenario"]["recall_by_class"].get(cls)) for r in results.values())
        )
    console.print(per_class)
    pairs = Table(
        title=f"peers' own test pairs (skipped {meta['skipped_peer_rows']} "
        "label-only/tld-only/invalid rows) and known leak domains"
    )
    for column in (
        "tool",
        "pair recall",
        "pair suggestion ok",
        "control alerts",
        "known-leak recall",
        "known-leak suggestion ok",
    ):
        pairs.add_column(column, justify="right" if column != "tool" else "left")
    for tool, r in results.items():
        p, k = r["peer_pairs"], r["known_leaks"]
        pairs.add_row(
            tool,
            _pct(p["recall"]),
            _pct(p["suggestion_accuracy"]),
            _pct(p["control_alert_rate"]),
            _pct(k["recall"]),
            _pct(k["suggestion_accuracy"]),
        )
    console.print(pairs)


if __name__ == "__main__":
    main()
