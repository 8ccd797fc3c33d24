"""The web interface: dashboard, REST API (OpenAPI), metrics, and senders' release links.

``create_app(runtime)`` builds the FastAPI app over a running typogate that has a store;
``WebServer`` runs it with uvicorn on a thread of its own (``typogate web`` and
``typogate serve``).
"""

from typogate.web.app import create_app
from typogate.web.context import WebContext

__all__ = ["WebContext", "create_app"]
