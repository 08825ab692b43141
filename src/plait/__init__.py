"""plait: a parallel workflow engine -- a DAG of tasks, run as fast as the limits allow, correct
under failure."""

from ._config import EngineConfig
from ._context import Context
from ._engine import arun, run
from ._events import (
    Event,
    RunFinished,
    RunStarted,
    Subscriber,
    TaskCancelled,
    TaskEvent,
    TaskFailed,
    TaskReady,
    TaskRetrying,
    TaskSkipped,
    TaskStarted,
    TaskSucceeded,
)
from ._exceptions import (
    BindingError,
    ConfigError,
    CycleError,
    DuplicateTaskError,
    InvalidOptionError,
    PlaitError,
    RunFailedError,
    TaskCancelledError,
    TaskTimeoutError,
    UnknownDependencyError,
    WorkflowError,
)
from ._policies import RetryPolicy
from ._results import RunResult, TaskError, TaskResult
from ._state import RunStatus, TaskStatus
from ._workflow import TaskSpec, Workflow

__version__ = "0.1.0"

__all__ = [
    "BindingError",
    "ConfigError",
    "Context",
    "CycleError",
    "DuplicateTaskError",
    "EngineConfig",
    "Event",
    "InvalidOptionError",
    "PlaitError",
    "RetryPolicy",
    "RunFailedError",
    "RunFinished",
    "RunResult",
    "RunStarted",
    "RunStatus",
    "Subscriber",
    "TaskCancelled",
    "TaskCancelledError",
    "TaskError",
    "TaskEvent",
    "TaskFailed",
    "TaskReady",
    "TaskResult",
    "TaskRetrying",
    "TaskSkipped",
    "TaskSpec",
    "TaskStarted",
    "TaskStatus",
    "TaskSucceeded",
    "TaskTimeoutError",
    "UnknownDependencyError",
    "Workflow",
    "WorkflowError",
    "arun",
    "run",
]
