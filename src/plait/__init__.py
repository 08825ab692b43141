"""plait: a parallel workflow engine -- a DAG of tasks, run as fast as the limits allow, correct
under failure."""

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
    DefinitionChangedError,
    DuplicateTaskError,
    InputTimeoutError,
    InputValidationError,
    InvalidOptionError,
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
    WorkflowError,
    WorkflowFileError,
)
from ._files import LoadedTarget, load_target
from ._logs import LogLine
from ._pause import Pause, Question
from ._policies import RetryPolicy
from ._public import publish
from ._results import RunResult, TaskError, TaskResult
from ._runs import answer, aresume, arun, get_logs, get_run, list_runs, resume, run
from ._serialization import JSONSerializer, PickleSerializer, Serializer
from ._shell import ShellTask
from ._state import RunStatus, TaskStatus
from ._workflow import TaskSpec, Workflow

__version__ = "0.1.0"

__all__ = [
    "BindingError",
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
    "LoadedTarget",
    "LogLine",
    "NotWaitingError",
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
    "Subscriber",
    "TaskCancelled",
    "TaskCancelledError",
    "TaskError",
    "TaskEvent",
    "TaskFailed",
    "TaskLogged",
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
    "UnknownDependencyError",
    "Workflow",
    "WorkflowError",
    "WorkflowFileError",
    "answer",
    "aresume",
    "arun",
    "get_logs",
    "get_run",
    "list_runs",
    "load_target",
    "resume",
    "run",
]

publish(globals(), __all__)  # plait.TaskTimeoutError, not plait._exceptions.TaskTimeoutError
