"""The README's tour, run literally: every sh and console block, command by command and in
order, in a scratch folder that has only `.venv` (this test's own), as a new admin follows
it; a console block's output must be what the README shows (at 80 columns); the pycon block
runs as a doctest in the same folder. A block the tour cannot run on a test machine says so
in the README, with its reason, in a `<!-- tour-test: skip (why) -->` line right above it."""

from __future__ import annotations

import doctest
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
VENV = Path(sys.executable).parent.parent
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)
_SKIP = re.compile(r"<!-- tour-test: skip \((.+)\) -->\s*$")
_HEREDOC = re.compile(r"<<-?\s*'?(\w+)'?")


@dataclass
class Block:
    language: str
    text: str
    line: int  # where it starts in the README, for failure messages
    skipped: str | None  # why, when the README marks it


def blocks() -> list[Block]:
    text = README.read_text(encoding="utf-8")
    found = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = _SKIP.search(before)
        found.append(
            Block(
                match.group(1),
                match.group(2),
                text.count("\n", 0, match.start()) + 1,
                skip.group(1) if skip else None,
            )
        )
    return found


def commands(script: str) -> list[str]:
    """Split a shell block into its commands: one a line, a heredoc with its body, a
    backslash continuation with its next line; comments and blank lines are not commands."""
    lines, found = script.splitlines(), []
    while lines:
        line = lines.pop(0)
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        while line.endswith("\\") and lines:
            line = line[:-1] + lines.pop(0)
        heredoc = _HEREDOC.search(line)
        if heredoc:
            body = []
            while lines and lines[0] != heredoc.group(1):
                body.append(lines.pop(0))
            line = "\n".join([line, *body, lines.pop(0) if lines else heredoc.group(1)])
        found.append(line)
    return found


def console(text: str) -> list[tuple[str, str]]:
    """A console block's ``$ command`` lines, each with the output shown under it."""
    pairs: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            pairs.append((line[2:], []))
        else:
            assert pairs, f"console output before any command: {line!r}"
            pairs[-1][1].append(line)
    return [(command, "\n".join(output)) for command, output in pairs]


def _shown(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tour")
    (folder / ".venv").symlink_to(VENV)
    return folder


def _run(command: str, folder: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TYPOGATE_CONFIG"}
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", command],
        cwd=folder,
        env={**env, "COLUMNS": "80"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_tour_runs_as_written(scratch):
    ran = 0
    for block in blocks():
        if block.skipped is not None or block.language not in ("sh", "console", "pycon"):
            continue
        where = f"README.md:{block.line}"
        if block.language == "sh":
            for command in commands(block.text):
                done = _run(command, scratch)
                assert done.returncode == 0, f"{where}: {command}\n{done.stderr}"
                ran += 1
        elif block.language == "console":
            for command, shown in console(block.text):
                done = _run(command, scratch)
                assert done.returncode == 0, f"{where}: {command}\n{done.stderr}"
                assert _shown(done.stdout) == _shown(shown), f"{where}: {command}"
                ran += 1
        else:
            parser = doctest.DocTestParser()
            test = parser.get_doctest(block.text, {}, where, str(README), block.line)
            runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
            here = Path.cwd()
            os.chdir(scratch)  # the pycon block reads typogate.toml from the tour's folder
            try:
                runner.run(test)
            finally:
                os.chdir(here)
            assert runner.summarize(verbose=False).failed == 0, where
            ran += 1
    assert ran >= 8  # the tour is mostly runnable: only marked blocks are left out


def test_blocks_left_out_say_why_and_every_fence_is_known():
    for block in blocks():
        assert block.language in ("sh", "console", "pycon", "toml", ""), block
        if block.skipped is not None:
            assert len(block.skipped.split()) >= 3, f"README.md:{block.line}: say why"


def test_links_stay_inside_the_repository():
    for target in re.findall(r"\]\(([^)]+)\)", README.read_text(encoding="utf-8")):
        if re.match(r"\w+://", target):
            continue
        path = (ROOT / target.split("#")[0]).resolve()
        assert path.is_relative_to(ROOT), target
        assert path.exists(), target


def test_the_splitter_keeps_heredocs_and_continuations_whole():
    script = "a\n# comment\ncat > f <<'EOF'\nx = 1\nEOF\nb \\\n  c\n"
    assert commands(script) == ["a", "cat > f <<'EOF'\nx = 1\nEOF", "b   c"]
