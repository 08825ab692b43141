"""Serving plait's metrics to a scraper: the text exposition, with gauges read from a store.

For a server (``plait serve``, or one of the user's), :func:`metrics_exposition` (public:
``plait.metrics_exposition``) renders a registry in the text format, with
gauges read from a store when one is given: ``plait_store_runs`` (by ``status``) and
``plait_store_open_questions``; :func:`metrics_route` is that as a Starlette route for
``/metrics``, behind the server's token (``plait serve`` mounts it through ``create_app``'s
``routes``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._exceptions import ConfigError
from ._metrics_series import MISSING_EXTRA
from ._public import publish_exports
from ._state import RunStatus

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from .stores import Store

__all__ = ["metrics_exposition", "metrics_route"]


def metrics_exposition(
    registry: CollectorRegistry | None = None, *, store: Store | None = None
) -> tuple[bytes, str]:
    """The metrics of ``registry`` (default: prometheus_client's) in Prometheus's text format,
    and its content type, for a server's ``/metrics`` route; with ``store``, also gauges read
    from it now: ``plait_store_runs`` by ``status`` and ``plait_store_open_questions``.

    Raises:
        ConfigError: prometheus_client is not installed.
    """
    try:
        from prometheus_client import (  # noqa: PLC0415 - an optional dependency
            CONTENT_TYPE_LATEST,
            REGISTRY,
            generate_latest,
        )
        from prometheus_client.core import (  # noqa: PLC0415 - an optional dependency
            CollectorRegistry,
            GaugeMetricFamily,
        )
    except ImportError:
        raise ConfigError(MISSING_EXTRA) from None
    body = generate_latest(registry or REGISTRY)
    if store is not None:
        runs = GaugeMetricFamily(
            "plait_store_runs", "Runs in the store, by status.", labels=("status",)
        )
        for status in RunStatus:
            runs.add_metric((str(status),), _count_runs(store, status))
        open_questions = len(store.open_questions(limit=1_000_000))
        questions = GaugeMetricFamily(
            "plait_store_open_questions",
            "Questions of paused or running runs that wait for an answer.",
            value=open_questions,
        )

        class _StoreGauges:
            def collect(self) -> list[GaugeMetricFamily]:
                return [runs, questions]

        gauges = CollectorRegistry(auto_describe=False)
        gauges.register(_StoreGauges())
        body += generate_latest(gauges)
    return body, CONTENT_TYPE_LATEST


def _count_runs(store: Store, status: RunStatus) -> int:
    """How many runs ``store`` has with ``status`` (page by page: one query per thousand)."""
    count, cursor = 0, None
    while True:
        page = store.list_runs(status=status, before=cursor, limit=1000)
        count += len(page.runs)
        if page.next_cursor is None:
            return count
        cursor = page.next_cursor


def metrics_route(
    store: Store,
    *,
    is_token: Callable[[str], bool],
    registry: CollectorRegistry | None = None,
    path: str = "/metrics",
) -> Any:
    """A Starlette route serving :func:`metrics_exposition` (``registry`` and the gauges of
    ``store``) at ``path`` to a scraper that sends ``Authorization: Bearer TOKEN`` with a token
    ``is_token`` accepts; 401 otherwise (Prometheus's ``authorization`` scrape setting sends
    it). The store is read in a worker thread.

    Raises:
        ConfigError: prometheus_client or Starlette is not installed.
    """
    try:
        from starlette.concurrency import run_in_threadpool  # noqa: PLC0415 - optional
        from starlette.responses import PlainTextResponse, Response  # noqa: PLC0415
        from starlette.routing import Route  # noqa: PLC0415
    except ImportError:
        raise ConfigError("metrics_route needs Starlette: pip install 'plait[ui]'") from None

    async def metrics(request: Any) -> Any:
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not is_token(credential.strip()):
            return PlainTextResponse(
                "the metrics need the server's token: send Authorization: Bearer TOKEN",
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        body, content_type = await run_in_threadpool(metrics_exposition, registry, store=store)
        return Response(body, media_type=content_type)

    return Route(path, metrics)


publish_exports(globals())  # plait.metrics_exposition: see plait._public
