"""The exceptions plait raises.

Every plait error subclasses :class:`PlaitError` and the builtin that fits it, so callers can catch
either::

    PlaitError                      anything plait raises on purpose
    ├── WorkflowError (ValueError)  the workflow definition is invalid; nothing has run
    │   ├── DuplicateTaskError      two tasks share an id
    │   ├── UnknownDependencyError  a task depends on an id the workflow does not have
    │   ├── CycleError              the dependencies form a cycle (carries it as a path)
    │   ├── BindingError            a function parameter that nothing can fill
    │   ├── InvalidOptionError      a task option has a value plait cannot use
    │   ├── DefinitionChangedError  a run is resumed with a workflow that changed since
    │   └── WorkflowFileError       a workflow file (or load target) cannot be loaded; it names
    │                               the file, the line and the field
    ├── InputValidationError (ValueError)
    │                               an answer to a task's question does not fit its schema
    ├── ConfigError (ValueError)    an engine setting has a value plait cannot use
    ├── OutputNotStorableError (TypeError)
    │                               a task's output cannot be stored by the run's serializer
    ├── NotPicklableError (TypeError)
    │                               a task's function, argument or output cannot be pickled, so
    │                               it cannot travel to (or back from) the process that runs it
    ├── SerializerMismatchError (ValueError)
    │                               a run's outputs were stored by another serializer than the
    │                               one given to load them (a pickled run needs an explicit
    │                               ``serializer=plait.PickleSerializer()``)
    ├── MapError (TypeError)        a mapped task could not expand: what it maps over is not
    │                               a list, or has more items than ``max_map`` (or: some of
    │                               its instances failed)
    ├── TaskTimeoutError (TimeoutError)
    │                               an attempt ran past its timeout
    ├── InputTimeoutError (TimeoutError)
    │                               nobody answered a task's question in time
    ├── NotWaitingError (RuntimeError)
    │                               an answer for a task that asked no question
    ├── TaskCancelledError (RuntimeError)
    │                               raised by ``ctx.raise_if_cancelled()`` in a cancelled task
    ├── WorkerLostError (RuntimeError)
    │                               the worker running an attempt died unasked (killed, out of
    │                               memory, crashed); a retry may succeed elsewhere
    ├── ShellCommandError (RuntimeError)
    │                               a shell task's command exited with a non-zero status
    ├── RunFailedError (RuntimeError)
    │                               raised by ``RunResult.raise_for_status()`` for a run that did
    │                               not succeed
    ├── TaskNotFoundError (LookupError)
    │                               a run has no task with the id asked for (``plait.get_logs``)
    ├── NothingToCancelError (RuntimeError)
    │                               ``plait.cancel`` of a run that succeeded
    ├── CancelTimeoutError (TimeoutError)
    │                               a live run's owner did not answer a cancel in time
    ├── AnswerTimeoutError (TimeoutError)
    │                               a live run's owner did not take an answer in time
    ├── InvalidCursorError (ValueError)
    │                               a cursor no page of runs handed out (``plait.stores``)
    └── StoreError (RuntimeError)   the store refused an operation (``plait.stores``)
        ├── RunExistsError          a new run's id is taken
        ├── RunNotFoundError (LookupError)
        │                           the store has no such run
        ├── LeaseHeldError          another live process owns the run
        ├── LeaseLostError          this process no longer owns the run (it stopped)
        └── StoreUnavailableError   the store was out of reach or busy (a run whose store
                                    stays so for as long as its lease allows stopped)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._results import RunResult

from ._public import publish_exports

__all__ = [
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
    "NotPicklableError",
    "NotWaitingError",
    "NothingToCancelError",
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
]


class PlaitError(Exception):
    """Base class of every error plait raises on purpose."""


class WorkflowError(PlaitError, ValueError):
    """The workflow definition is invalid; no task has run."""


class DuplicateTaskError(WorkflowError):
    """Two tasks were given the same id."""


class UnknownDependencyError(WorkflowError):
    """A task depends on an id that the workflow does not define."""


class CycleError(WorkflowError):
    """The dependencies form a cycle; ``cycle`` holds it as a path that ends where it starts."""

    def __init__(self, message: str, cycle: Sequence[str]) -> None:
        super().__init__(message)
        self.cycle = list(cycle)


class BindingError(WorkflowError):
    """A parameter of a task function that neither a dependency, the context nor params can fill."""


class DefinitionChangedError(WorkflowError):
    """A run is resumed with a workflow whose tasks, dependencies or functions changed."""


class InvalidOptionError(WorkflowError):
    """A task option has a value that plait cannot use."""


class WorkflowFileError(WorkflowError):
    """A workflow file, or a load target, cannot be loaded; nothing has run.

    ``file`` is the file (or module) it came from; ``line`` and ``column`` (1-based) and ``field``
    (a path such as ``tasks[2].retry.max_retries``) say where in it, when that is known;
    ``problem`` is what was wrong there. The message holds them all:
    ``flow.yaml, line 9: tasks[2].timeout: expected a number of seconds > 0, not 'soon'``.

    A file with several problems raises one error for all of them (:meth:`several`): ``errors``
    holds each (in the order of the file), the message has one line per problem, and the other
    attributes are those of the first. For a single problem ``errors`` is ``(self,)``.
    """

    errors: tuple[WorkflowFileError, ...]

    def __init__(
        self,
        problem: str,
        *,
        file: str,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
    ) -> None:
        where = file if line is None else f"{file}, line {line}"
        if line is not None and column is not None:
            where += f", column {column}"
        super().__init__(f"{where}: {field}: {problem}" if field else f"{where}: {problem}")
        self.problem = problem
        self.file = file
        self.line = line
        self.column = column
        self.field = field
        self.errors = (self,)

    @classmethod
    def several(cls, errors: Sequence[WorkflowFileError]) -> WorkflowFileError:
        """One error that reports all of ``errors`` (at least one), each on a line of its own."""
        if len(errors) == 1:
            return errors[0]
        first = errors[0]
        combined = cls(
            first.problem, file=first.file, line=first.line, column=first.column, field=first.field
        )
        combined.args = ("\n".join(str(error) for error in errors),)
        combined.errors = tuple(errors)
        combined.__cause__ = first.__cause__
        return combined


class InputValidationError(PlaitError, ValueError):
    """An answer does not fit its question's schema; nothing was recorded.

    ``task_id``, ``field`` (a path into the answer) and ``rule`` say what was wrong.
    """

    def __init__(self, message: str, *, task_id: str, field: str, rule: str) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.field = field
        self.rule = rule


class NotWaitingError(PlaitError, RuntimeError):
    """An answer was given for a task that is not waiting for one."""


class InputTimeoutError(PlaitError, TimeoutError):
    """Nobody answered a task's question before its pause timeout."""


class ConfigError(PlaitError, ValueError):
    """An engine setting has a value that plait cannot use."""


class OutputNotStorableError(PlaitError, TypeError):
    """A task returned a value that the run's serializer cannot store (JSON by default)."""


class NotPicklableError(PlaitError, TypeError):
    """A task's function, one of its arguments or its output cannot be pickled, so it cannot
    reach the worker process (or machine) that runs the task, or come back from it.

    The message names the task and the value's type, and says what would fix it. No retry
    changes it: the attempt fails at once.
    """


class SerializerMismatchError(PlaitError, ValueError):
    """A run's outputs were stored by another serializer than the one given to load them.

    plait never picks a serializer by the name a store holds: a store is data, and loading a
    pickle runs code chosen by whoever wrote it. ``stored`` is the name the run's record gives,
    ``given`` the name of the serializer plait was asked to use.
    """

    def __init__(self, message: str, *, stored: object, given: str) -> None:
        super().__init__(message)
        self.stored = stored
        self.given = given


class MapError(PlaitError, TypeError):
    """A mapped task could not expand: the output it maps over is not a list (or tuple), or it
    has more items than ``EngineConfig.max_map``; the mapped task fails with it, and no
    instance runs. A mapped task some of whose instances failed records an error of this type
    too, naming them."""


class TaskTimeoutError(PlaitError, TimeoutError):
    """An attempt of a task ran past its timeout."""


class TaskCancelledError(PlaitError, RuntimeError):
    """The task was cancelled: ``ctx.raise_if_cancelled()`` raises it so sync code stops early."""


class WorkerLostError(PlaitError, RuntimeError):
    """The worker that ran an attempt died before it reported an outcome.

    A worker process that the OOM killer, a segfault, ``os._exit`` or a ``kill -9`` ended (or a
    Dask worker that left its cluster) takes only its own attempt with it: that attempt fails
    with this error, which the task's retry policy treats like any other failure (a retry runs
    on a fresh worker). The message names the task, the attempt and how the worker ended.
    """


class ShellCommandError(PlaitError, RuntimeError):
    """A shell task's command exited with a non-zero status, or was killed by a signal.

    ``command`` is the command (an argv list joined as a shell would read it); ``returncode``
    the exit status (negative: minus the number of the signal that killed it); ``stdout`` and
    ``stderr`` hold the end of what the command wrote (up to 64 KiB of each).
    """

    def __init__(
        self, message: str, *, command: str, returncode: int, stdout: str, stderr: str
    ) -> None:
        super().__init__(message)
        self.command = command
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


class RunFailedError(PlaitError, RuntimeError):
    """The run did not succeed; ``result`` is the full :class:`RunResult`."""

    def __init__(self, message: str, result: RunResult) -> None:
        super().__init__(message)
        self.result = result


class TaskNotFoundError(PlaitError, LookupError):
    """A run has no task with the id asked for."""


class NothingToCancelError(PlaitError, RuntimeError):
    """``plait.cancel`` was asked to cancel a run that already succeeded (or succeeded while the
    cancel was on its way)."""


class CancelTimeoutError(PlaitError, TimeoutError):
    """A live run's owner holds its lease but did not record the run cancelled within the time
    ``plait.cancel`` was given; the request stays pending, and the owner acts on it when it next
    looks. ``owner`` names that process."""

    def __init__(self, message: str, owner: str) -> None:
        super().__init__(message)
        self.owner = owner


class AnswerTimeoutError(PlaitError, TimeoutError):
    """A live run's owner holds its lease but did not take an answer within the time
    ``plait.answer`` was given; the request stays pending, and the owner takes it when it next
    looks. ``owner`` names that process."""

    def __init__(self, message: str, owner: str) -> None:
        super().__init__(message)
        self.owner = owner


publish_exports(globals())  # plait.X, not plait._exceptions.X: see plait._public
