"""The web interface's server: uvicorn on a thread of its own, with its own event loop, so
a slow page never delays a verdict."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

import uvicorn

from typogate.errors import CannotListen
from typogate.web.app import create_app
from typogate.web.context import WebContext

if TYPE_CHECKING:
    from typogate.runtime import Runtime

log = logging.getLogger(__name__)


class WebServer:
    """The dashboard and REST API of ``runtime`` on ``host:port`` (a controller service)."""

    def __init__(self, runtime: Runtime, host: str, port: int) -> None:
        self.address = f"{host}:{port}"
        app = create_app(runtime)
        # Said once at start-up, where the runtime logs, and on the admin's dashboard.
        warning = WebContext.of(runtime).release_link_warning(host)
        app.state.release_link_warning = warning
        if warning:
            log.warning("%s", warning)
        self._server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                log_config=None,
                access_log=False,
                # uvicorn would take X-Forwarded-For from loopback as the client's address;
                # the app reads it itself, from web.trusted_proxies only (web.access).
                proxy_headers=False,
            )
        )
        self._thread = threading.Thread(target=self._server.run, name="web", daemon=True)

    def start(self) -> None:
        """Serve; raises :class:`CannotListen` when the address cannot be bound."""
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():  # uvicorn logged why (address in use, say)
                raise CannotListen("the web interface", self.address, "see the error above")
            time.sleep(0.02)
        log.info("web interface on http://%s", self.address)

    def stop(self) -> None:
        """Finish the requests in flight, then stop."""
        self._server.should_exit = True
        self._thread.join(timeout=10)
