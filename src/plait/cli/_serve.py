"""``plait serve``: the web page (see ``plait.web``), started from the command line.

Its dependencies (Starlette, uvicorn, Jinja2, python-multipart) are the ``ui`` extra; they are
imported only here, when the command runs, so ``plait --help`` never loads them, and a missing
one gets one line that says what to install.
"""

from __future__ import annotations

import importlib.util
import os

import click

__all__ = ["serve"]

MISSING_UI = "plait serve needs its extra: pip install 'plait[ui]'"

#: The modules of the ui extra, as imported.
UI_MODULES = ("starlette", "uvicorn", "jinja2", "multipart")

_SERVE_EPILOG = """\b
Examples:
  plait serve
  plait serve --store postgresql://db/plait --port 9000
  PLAIT_UI_TOKEN=... plait serve --host 0.0.0.0 --user-header X-Forwarded-User

\b
Open the address it prints (it carries the token, as Jupyter's does). The
token is random unless PLAIT_UI_TOKEN sets it; a question's shareable link is
signed with PLAIT_UI_SECRET (else the token), so links outlive a restart when
either is set. Binding an address other than this machine's needs PLAIT_UI_TOKEN.
Resume buttons run `plait resume` in a child process, from this directory: a
run's stored target must lie here or on PLAIT_PATH.
"""


@click.command(epilog=_SERVE_EPILOG)
@click.option("--store", metavar="URL", help="The store (default: $PLAIT_STORE, else ~/.plait).")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to bind.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8421,
    show_default=True,
    help="The port to listen on (0: any free one).",
)
@click.option(
    "--user-header",
    metavar="NAME",
    help="Take who answers from this header, set by a trusted proxy (X-Forwarded-User).",
)
def serve(store: str | None, host: str, port: int, user_header: str | None) -> None:
    """Serve a web page to watch runs, answer their questions, cancel and resume them."""
    from ._common import _fail, _opened, _store_url

    missing = [name for name in UI_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        _fail(f"{MISSING_UI} (missing: {', '.join(missing)})")
    from ..web._auth import Keys
    from ..web._server import is_loopback
    from ..web._server import serve as run_server

    token = os.environ.get("PLAIT_UI_TOKEN")
    if not is_loopback(host) and not token:
        _fail(
            f"refusing to serve on {host!r} (reachable from other machines) with a random token "
            "printed to this terminal; set PLAIT_UI_TOKEN to a secret of your own, or bind "
            "127.0.0.1"
        )
    url = _store_url(store)
    if url.startswith("memory:"):
        _fail(
            "the memory store lives inside one process, so a server cannot see its runs; "
            "serve a SQLite or PostgreSQL store (--store sqlite:///path/plait.db)"
        )
    with _opened(store):  # a missing store fails here, with the usual message
        pass
    keys = Keys(token, os.environ.get("PLAIT_UI_SECRET")) if token else Keys.random()
    try:
        run_server(url, keys=keys, host=host, port=port, user_header=user_header)
    except OSError as error:
        _fail(f"cannot listen on {host}:{port}: {error.strerror or error}; choose another --port")
