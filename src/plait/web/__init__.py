"""``plait serve``: a web page to watch runs, answer their questions, cancel and resume them.

Imported only by ``plait serve`` (the ``ui`` extra: Starlette, uvicorn, Jinja2). The pieces:

- ``_app``: the routes and :func:`create_app`, the app factory (extra routes such as
  ``/metrics`` mount there);
- ``_site``: what every page shares (the store, keys, templates, watches, children);
- ``_pages``: runs, a run, the inbox, and their live streams;
- ``_answering``: a question's form and its answer;
- ``_actions``: cancel and resume;
- ``_auth``: the token, its cookie, signed question links, CSRF tokens;
- ``_security``: the middleware that takes ``?token=`` and sets the security headers (CSP);
- ``_forms``: forms from JSON Schemas, and answers from submitted forms;
- ``_data``: every store query the pages make;
- ``_live``: server-sent events, one store watcher per thing watched;
- ``_children``: resumes in child processes the server supervises;
- ``_run_view``: a run's sections, made by the report's code;
- ``_server``: the socket and uvicorn.

Templates are in ``plait/templates/web``, static files in ``plait/static/web``.
"""

from __future__ import annotations

from ._app import create_app
from ._auth import Keys

__all__ = ["Keys", "create_app"]
