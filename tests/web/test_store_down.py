"""The web part with its PostgreSQL store stopped: /health says so (503), pages and the API
answer 503 instead of failing, and everything works again once the store is back."""

from __future__ import annotations

import time

import pytest
from mta import Server
from ports import free_port
from web_client import ApiClient, first_admin_password

pytestmark = pytest.mark.postgres


def test_dead_store_is_reported_and_survived(tmp_path, postgres):
    port = free_port()
    web = Server(
        ["web", "--listen", f"127.0.0.1:{port}", "--db", postgres.url], port, tmp_path / "web.log"
    )
    try:
        web.start()
        client = ApiClient(f"http://127.0.0.1:{port}", "admin", first_admin_password(web.log))
        assert client.get("/health").status_code == 200
        postgres.stop()
        health = client.get("/health")
        assert health.status_code == 503 and health.json()["store"] == "unreachable"
        api = client.get("/api/stats")
        assert api.status_code == 503 and "unreachable" in api.json()["detail"]
        page = client.get("/")
        assert page.status_code == 503 and "unreachable" in page.text
        postgres.start()
        deadline = time.monotonic() + 30
        while client.get("/health").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert client.get("/api/stats").status_code == 200  # the session survived
    finally:
        web.stop()
