"""A small real filesystem for full-disk tests: a tmpfs mounted (as root) on a fresh folder,
filled to the last byte on demand, unmounted after."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_disk(size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (``1m``, ``64m``) on a fresh folder under /tmp; the test is
    skipped, with the reason, when mounting is not permitted here."""
    folder = Path(tempfile.mkdtemp(prefix="typogate-disk-", dir="/tmp"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        folder.rmdir()
        pytest.skip(f"cannot mount a small filesystem: {mounted.stderr.strip() or 'not root'}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], check=False)
        shutil.rmtree(folder, ignore_errors=True)


def fill(folder: Path) -> Path:
    """Take every free byte of ``folder``'s filesystem with a file; that file (remove it to
    give the space back)."""
    filler = folder / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        block = b"\0" * 65536
        while True:
            try:
                if os.write(descriptor, block) < len(block):
                    block = block[:4096]
            except OSError:
                if len(block) == 1:
                    return filler
                block = block[: len(block) // 2]
    finally:
        os.close(descriptor)
