"""Shared test helpers (ports.py, mta.py, postgres.py, ...) are imported from this folder;
the fixtures every part's tests use are here (a PostgreSQL server, Debian's Chromium)."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from postgres import PostgresServer, postgres_binary  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def index_cache(tmp_path_factory):
    """The folder where this run's typogate processes keep the index of their lists
    (policy/index_cache.py): the run's own, as on a fresh machine, not the home of whoever
    runs the tests."""
    folder = tmp_path_factory.mktemp("cache")
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(folder)
    try:
        yield folder / "typogate"
    finally:
        if before is None:
            del os.environ["XDG_CACHE_HOME"]
        else:
            os.environ["XDG_CACHE_HOME"] = before


@pytest.fixture
def postgres():
    """A real PostgreSQL server of the test's own, started and removed by the test."""
    if postgres_binary("postgres") is None:
        pytest.skip("make test installs postgresql")
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.remove()


CHROMIUM = "/usr/bin/chromium"
# Debian's Chromium as root in a container, with nothing reaching for Google's servers.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# One browser per test module, not per session: Playwright's sync API keeps an asyncio loop
# running in the main thread while it is open, and later tests run asyncio loops of their
# own (the monitor, the fuzzing of the policy service) or a Playwright of their own.
@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("make test installs Debian's chromium")
    from playwright.sync_api import expect, sync_playwright

    # Playwright's 5 s for an assertion is a desktop's: here the browser shares 2 cores with
    # Postfix, PostgreSQL and the other worker, and plotly.js (3.5 MB) once took longer
    # than that to draw the dashboard's chart. An assertion that holds waits no longer.
    expect.set_options(timeout=20_000)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()
