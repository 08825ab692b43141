"""The options several commands share (--store, --unsafe-pickle, --by, --json, the engine
settings of ``run`` and ``resume``), and the parsing of their values."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from .._serialization import Serializer

# Start-up time: `plait --help` imports this module; it must not load the engine, rich, the
# stores or jsonschema, so they are imported inside the functions that use them (bench/run.py
# measures it).

__all__: list[str] = []


_STORE_HELP = "Store URL (default: $PLAIT_STORE, else sqlite in $PLAIT_HOME)."


def _store_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--store", metavar="URL", help=_STORE_HELP)(fn)


_UNSAFE_PICKLE_HELP = (
    "Store and load task outputs and answers with pickle (any picklable value). UNSAFE: "
    "loading a pickle runs whatever code its writer put in it, so anyone who can write to the "
    "store can run code as you. Only for a store nobody else can write to."
)


def _unsafe_pickle_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--unsafe-pickle", is_flag=True, help=_UNSAFE_PICKLE_HELP)(fn)


def _by_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--by",
        metavar="NAME",
        help="Who answers, as recorded with the answers (default: your user name).",
    )(fn)


def _answerer(by: str | None) -> str | None:
    """Who answers from this command line: ``--by``, or the user this process runs as."""
    if by is not None:
        return by
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no user name in the environment nor the password database
        return None


def _serializer(unsafe_pickle: bool) -> Serializer | None:
    """The serializer ``--unsafe-pickle`` asks for (None: plait's default, JSON)."""
    from .._serialization import PickleSerializer

    return PickleSerializer() if unsafe_pickle else None


_JSON_HELP = "JSON instead of a table (the schema is in the examples below)."


def _pairs(values: Sequence[str], option: str, form: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        key, equals, rest = value.partition("=")
        if not equals or not key:
            raise click.BadParameter(f"{value!r} is not of the form {form}", param_hint=option)
        pairs.append((key, rest))
    return pairs


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
    except RecursionError:
        raise click.BadParameter(
            f"{text[:20]}... is nested deeper than plait can read (about a thousand levels)",
            param_hint="--param",
        ) from None


def _pools(values: Sequence[str]) -> dict[str, int]:
    pools = {}
    for name, limit in _pairs(values, "--pool", "NAME=N"):
        if not limit.isdigit() or int(limit) < 1:
            raise click.BadParameter(
                f"pool {name!r} needs a whole number of slots >= 1, not {limit!r}",
                param_hint="--pool",
            )
        pools[name] = int(limit)
    return pools


#: What ``--task-timeout none`` gives: no limit (None itself means "flag not given").
_NO_LIMIT = "none"


class _Seconds(click.ParamType):  # type: ignore[type-arg] # generic from click 8.2 on
    """A number of seconds > 0, or ``none`` for no limit."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or isinstance(value, float):
            return value
        if str(value).lower() == _NO_LIMIT:
            return _NO_LIMIT
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if not seconds > 0:
            self.fail(f"{value!r} is not a number of seconds > 0, nor 'none'", param, ctx)
        return seconds


#: The EngineConfig settings that ``run`` and ``resume`` take as flags, under their API names
#: (``max_retries`` is ``--max-retries``); ``run`` has flags of its own for ``max_concurrency``,
#: ``fail_fast`` and ``pools``. A flag left out keeps the workflow file's setting (on a resume:
#: the run's).
_SETTING_FLAGS: dict[str, tuple[Any, str]] = {
    "max_retries": (
        click.IntRange(min=0),
        "Retries of a failed task that sets no retry policy (default 3; 0 for none).",
    ),
    "retry_backoff": (click.FloatRange(min=0), "Seconds before the first retry (default 0.1)."),
    "retry_max_backoff": (
        click.FloatRange(min=0),
        "The longest wait between retries, in seconds (default 30).",
    ),
    "retry_jitter": (
        click.FloatRange(0, 1),
        "The random share of each retry delay, 0 to 1 (default 0.5).",
    ),
    "task_timeout": (_Seconds(), "Seconds an attempt may run, or 'none' (default 300)."),
    "cancel_grace": (
        click.FloatRange(min=0),
        "Seconds sync tasks get to notice a cancel (default 5).",
    ),
    "max_log_bytes": (
        click.IntRange(min=0),
        "Bytes of log kept per attempt: its first and last halves (default 1 MiB; 0: none).",
    ),
    "lease_seconds": (
        click.FloatRange(min=0.5),  # EngineConfig's MIN_LEASE_SECONDS
        "Seconds the run's lease lasts; the owner renews it every third (default 30).",
    ),
    "default_executor": (
        str,
        "Where sync tasks that name no executor run: thread, inline, process, or an executor "
        "of the workflow file's executors section (default: thread).",
    ),
    "max_map": (
        click.IntRange(min=0),
        "The most instances one mapped task may expand into (default 100,000).",
    ),
}

#: Shorter names a setting's flag also answers to.
_FLAG_ALIASES: dict[str, tuple[str, ...]] = {"default_executor": ("--executor",)}


def _setting_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add a flag for each EngineConfig setting in ``_SETTING_FLAGS`` and ``retry_failed_tasks``
    (their values arrive as keyword arguments named like the settings, None when not given)."""
    fn = click.option(
        "--retry-failed-tasks/--no-retry-failed-tasks",
        "retry_failed_tasks",
        default=None,
        help="Whether tasks without a retry policy of their own are retried (default: yes).",
    )(fn)
    fn = click.option(
        "--learn-estimates/--no-learn-estimates",
        "learn_estimates",
        default=None,
        help="Order ready tasks by estimates learned from the store's history (default: yes).",
    )(fn)
    for name, (kind, text) in reversed(_SETTING_FLAGS.items()):
        flag = "--" + name.replace("_", "-")
        aliases = _FLAG_ALIASES.get(name, ())
        fn = click.option(*aliases, flag, name, type=kind, default=None, help=text)(fn)
    return fn


def _given(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings given on the command line (those not left at None), as EngineConfig
    values."""
    return {
        name: None if value == _NO_LIMIT else value
        for name, value in settings.items()
        if value is not None
    }


_DASK_HELP = (
    "Run tasks on the Dask cluster whose scheduler is at ADDRESS (tcp://host:8786): an "
    "executor named dask, made the default; without -c, --max-concurrency becomes its widest "
    "window (eight tasks per worker thread of the cluster). Needs plait[dask]."
)
