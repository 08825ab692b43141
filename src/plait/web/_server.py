"""Running the web app: the socket, the token, uvicorn.

:func:`serve` binds the socket first (so ``--port 0`` picks a free port, and the address
printed is the one that works), prints the address with the token (as Jupyter does), then runs
uvicorn on it until Ctrl-C or SIGTERM, after which the resume children are stopped.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import socket
import sys
from typing import TYPE_CHECKING, Any, TextIO

from ._auth import Keys

if TYPE_CHECKING:
    from ..stores import Store

__all__ = ["is_loopback", "serve"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it (Linux): a response's head and body go out at once,
    # instead of the body waiting for the ACK that a keep-alive client delays by 40 ms.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(False)
    return sock


def serve(
    store_url: str,
    *,
    keys: Keys,
    host: str = "127.0.0.1",
    port: int = 8421,
    user_header: str | None = None,
    out: TextIO | None = None,
) -> None:
    """Serve the web app over ``store_url`` on ``host:port`` until interrupted."""
    import uvicorn  # noqa: PLC0415 - the ui extra, only here

    from ._app import create_app  # noqa: PLC0415

    sock = _bind(host, port)
    bound_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    routes, metrics_store = metrics_routes(store_url, keys)
    app = create_app(store_url, keys=keys, user_header=user_header, routes=routes)
    address = f"plait serve: {store_url}\n  http://{shown_host}:{bound_port}/?token={keys.token}"

    class _AnnouncingServer(uvicorn.Server):
        """Prints the address once the server has started: by then its signal handlers are in
        place, so a SIGTERM sent by whoever read the address stops it (printed earlier, a
        signal in between was lost and the server ran on)."""

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                print(address, file=out or sys.stdout, flush=True)

    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=5
    )
    try:
        _AnnouncingServer(config).run(sockets=[sock])
    finally:
        if metrics_store is not None:
            metrics_store.close()


def metrics_routes(store_url: str, keys: Keys) -> tuple[list[Any], Store | None]:
    """``/metrics`` (see ``plait._metrics_exposition.metrics_route``: this process's metrics and
    gauges read from the store, for a scraper that sends the server's token as a Bearer token)
    and the store it reads; none when prometheus_client is not installed (``plait[prometheus]``)."""
    if importlib.util.find_spec("prometheus_client") is None:
        return [], None
    from .._metrics_exposition import metrics_route  # noqa: PLC0415 - imports prometheus_client
    from ..stores import open_store  # noqa: PLC0415

    store = open_store(store_url)
    return [metrics_route(store, is_token=keys.is_token)], store
