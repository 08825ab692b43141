"""plait: a parallel workflow engine -- a DAG of tasks, run as fast as the limits allow, correct
under failure.

``import plait`` loads none of plait's modules: each public name is imported from its module on
first use (PEP 562), so that the command line starts fast and ``plait --help`` loads no engine.
``from plait import run`` and ``plait.run`` work as with eager imports. Each public class and
function says ``plait`` as its ``__module__`` (its private module publishes it so when it loads,
see :mod:`plait._public`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names, for type checkers; at run time each is loaded on first use
    from ._answers import answer
    from ._cancel import cancel
    from ._config import EngineConfig
    from ._context import Context
    from ._events import (
        Event,
        InputReceived,
        InputRequested,
        RunFinished,
        RunStarted,
        Subscriber,
        TaskCancelled,
        TaskEvent,
        TaskFailed,
        TaskLogged,
        TaskMapped,
        TaskReady,
        TaskRetrying,
        TaskSkipped,
        TaskStarted,
        TaskSucceeded,
    )
    from ._exceptions import (
        AnswerTimeoutError,
        BindingError,
        CancelTimeoutError,
        ConfigError,
        CycleError,
        DefinitionChangedError,
        DuplicateTaskError,
        InputTimeoutError,
        InputValidationError,
        InvalidOptionError,
        MapError,
        NothingToCancelError,
        NotPicklableError,
        NotWaitingError,
        OutputNotStorableError,
        PlaitError,
        RunFailedError,
        SerializerMismatchError,
        ShellCommandError,
        TaskCancelledError,
        TaskNotFoundError,
        TaskTimeoutError,
        UnknownDependencyError,
        WorkerLostError,
        WorkflowError,
        WorkflowFileError,
    )
    from ._files import LoadedTarget, load_target
    from ._logs import LogLine
    from ._metrics_exposition import metrics_exposition
    from ._pause import AnswerChannel, Pause, Question
    from ._policies import RetryPolicy
    from ._results import RunResult, TaskError, TaskResult
    from ._resume import aresume, resume
    from ._rules import Skip, TriggerRule
    from ._runs import arun, run
    from ._serialization import JSONSerializer, PickleSerializer, Serializer
    from ._shell import ShellTask
    from ._state import RunStatus, SkipCause, TaskStatus
    from ._stored_runs import get_logs, get_run, list_runs
    from ._task_spec import TaskSpec
    from ._workflow import Workflow
    from .stores import LeaseLostError, StoreUnavailableError

__version__ = "0.1.0"

__all__ = [
    "AnswerChannel",
    "AnswerTimeoutError",
    "BindingError",
    "CancelTimeoutError",
    "ConfigError",
    "Context",
    "CycleError",
    "DefinitionChangedError",
    "DuplicateTaskError",
    "EngineConfig",
    "Event",
    "InputReceived",
    "InputRequested",
    "InputTimeoutError",
    "InputValidationError",
    "InvalidOptionError",
    "JSONSerializer",
    "LeaseLostError",
    "LoadedTarget",
    "LogLine",
    "MapError",
    "NotPicklableError",
    "NotWaitingError",
    "NothingToCancelError",
    "OutputNotStorableError",
    "Pause",
    "PickleSerializer",
    "PlaitError",
    "Question",
    "RetryPolicy",
    "RunFailedError",
    "RunFinished",
    "RunResult",
    "RunStarted",
    "RunStatus",
    "Serializer",
    "SerializerMismatchError",
    "ShellCommandError",
    "ShellTask",
    "Skip",
    "SkipCause",
    "StoreUnavailableError",
    "Subscriber",
    "TaskCancelled",
    "TaskCancelledError",
    "TaskError",
    "TaskEvent",
    "TaskFailed",
    "TaskLogged",
    "TaskMapped",
    "TaskNotFoundError",
    "TaskReady",
    "TaskResult",
    "TaskRetrying",
    "TaskSkipped",
    "TaskSpec",
    "TaskStarted",
    "TaskStatus",
    "TaskSucceeded",
    "TaskTimeoutError",
    "TriggerRule",
    "UnknownDependencyError",
    "WorkerLostError",
    "Workflow",
    "WorkflowError",
    "WorkflowFileError",
    "answer",
    "aresume",
    "arun",
    "cancel",
    "get_logs",
    "get_run",
    "list_runs",
    "load_target",
    "metrics_exposition",
    "resume",
    "run",
]

#: The module of each public name (a test checks it against the imports above).
_EXPORTS: dict[str, tuple[str, ...]] = {
    "._answers": ("answer",),
    "._cancel": ("cancel",),
    "._config": ("EngineConfig",),
    "._context": ("Context",),
    "._events": (
        "Event",
        "InputReceived",
        "InputRequested",
        "RunFinished",
        "RunStarted",
        "Subscriber",
        "TaskCancelled",
        "TaskEvent",
        "TaskFailed",
        "TaskLogged",
        "TaskMapped",
        "TaskReady",
        "TaskRetrying",
        "TaskSkipped",
        "TaskStarted",
        "TaskSucceeded",
    ),
    "._exceptions": (
        "AnswerTimeoutError",
        "BindingError",
        "CancelTimeoutError",
        "ConfigError",
        "CycleError",
        "DefinitionChangedError",
        "DuplicateTaskError",
        "InputTimeoutError",
        "InputValidationError",
        "InvalidOptionError",
        "MapError",
        "NothingToCancelError",
        "NotPicklableError",
        "NotWaitingError",
        "OutputNotStorableError",
        "PlaitError",
        "RunFailedError",
        "SerializerMismatchError",
        "ShellCommandError",
        "TaskCancelledError",
        "TaskNotFoundError",
        "TaskTimeoutError",
        "UnknownDependencyError",
        "WorkerLostError",
        "WorkflowError",
        "WorkflowFileError",
    ),
    "._files": (
        "LoadedTarget",
        "load_target",
    ),
    "._logs": ("LogLine",),
    "._metrics_exposition": ("metrics_exposition",),
    "._pause": (
        "AnswerChannel",
        "Pause",
        "Question",
    ),
    "._policies": ("RetryPolicy",),
    "._results": (
        "RunResult",
        "TaskError",
        "TaskResult",
    ),
    "._resume": (
        "aresume",
        "resume",
    ),
    "._runs": (
        "arun",
        "run",
    ),
    "._serialization": (
        "JSONSerializer",
        "PickleSerializer",
        "Serializer",
    ),
    "._shell": ("ShellTask",),
    "._rules": (
        "Skip",
        "TriggerRule",
    ),
    "._state": (
        "RunStatus",
        "SkipCause",
        "TaskStatus",
    ),
    "._stored_runs": (
        "get_logs",
        "get_run",
        "list_runs",
    ),
    "._task_spec": ("TaskSpec",),
    "._workflow": ("Workflow",),
    # The store's errors that stop a run; they keep plait.stores as their module.
    ".stores": (
        "LeaseLostError",
        "StoreUnavailableError",
    ),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> Any:
    """Import public ``name`` from its module, once (then it is an ordinary attribute)."""
    try:
        module = _MODULE_OF[name]
    except KeyError:
        raise AttributeError(f"module 'plait' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
