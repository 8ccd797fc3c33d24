"""The web interface: dashboard, REST API (OpenAPI), metrics, and senders' release links.

``create_app(WebContext(store, config, guard))`` builds the FastAPI app; ``typogate web``
and ``typogate serve`` run it with uvicorn.
"""

from typogate.web.app import create_app
from typogate.web.context import WebContext

__all__ = ["WebContext", "create_app"]
