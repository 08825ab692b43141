"""The public surface of plait: what ``import plait`` offers, and the error hierarchy."""

from __future__ import annotations

import builtins
import importlib
import importlib.metadata
import inspect
import pickle
import pkgutil
import re
import typing
from types import ModuleType

import pytest

import plait
import plait._exceptions
import plait.executors
import plait.stores

EXPECTED_ALL = [
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

PUBLIC_ERRORS = [
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
    "LeaseLostError",
    "NotPicklableError",
    "NotWaitingError",
    "NothingToCancelError",
    "OutputNotStorableError",
    "PlaitError",
    "RunFailedError",
    "SerializerMismatchError",
    "ShellCommandError",
    "StoreUnavailableError",
    "TaskCancelledError",
    "TaskNotFoundError",
    "TaskTimeoutError",
    "UnknownDependencyError",
    "WorkerLostError",
    "WorkflowError",
    "WorkflowFileError",
]

#: Exceptions that are signals, not errors: not PlaitErrors, never a failure.
PUBLIC_SIGNALS = ["Skip"]


def _plait_modules() -> list[ModuleType]:
    """Every module of the plait package, subpackages included."""
    names = [info.name for info in pkgutil.walk_packages(plait.__path__, prefix="plait.")]
    return [importlib.import_module(name) for name in sorted(names)]


def _private_modules() -> list[ModuleType]:
    return [m for m in _plait_modules() if m.__name__.rsplit(".", 1)[-1].startswith("_")]


def test_all_is_exactly_the_expected_names() -> None:
    assert plait.__all__ == EXPECTED_ALL


def test_all_is_sorted() -> None:
    assert plait.__all__ == sorted(plait.__all__)


@pytest.mark.parametrize("name", EXPECTED_ALL)
def test_every_public_name_is_importable_from_plait(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from plait import {name}", namespace)
    assert namespace[name] is getattr(plait, name)


def test_star_import_gives_exactly_the_public_names() -> None:
    namespace: dict[str, object] = {}
    exec("from plait import *", namespace)
    assert sorted(name for name in namespace if name != "__builtins__") == EXPECTED_ALL


def test_version_matches_the_installed_distribution() -> None:
    assert plait.__version__ == importlib.metadata.version("plait")


def test_the_public_errors_are_exactly_the_exception_classes_of_all() -> None:
    exceptions = [
        name
        for name in plait.__all__
        if isinstance(getattr(plait, name), type)
        and issubclass(getattr(plait, name), BaseException)
    ]
    assert exceptions == sorted(PUBLIC_ERRORS + PUBLIC_SIGNALS)


def test_skip_is_a_signal_not_an_error() -> None:
    assert issubclass(plait.Skip, Exception)
    assert not issubclass(plait.Skip, plait.PlaitError)
    assert plait.Skip("nothing new").reason == "nothing new"


def test_plait_error_is_an_exception() -> None:
    assert issubclass(plait.PlaitError, Exception)


@pytest.mark.parametrize("name", PUBLIC_ERRORS)
def test_every_public_error_subclasses_plait_error(name: str) -> None:
    assert issubclass(getattr(plait, name), plait.PlaitError)


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (plait.WorkflowError, ValueError),
        (plait.ConfigError, ValueError),
        (plait.TaskTimeoutError, TimeoutError),
        (plait.TaskCancelledError, RuntimeError),
        (plait.RunFailedError, RuntimeError),
        (plait.ShellCommandError, RuntimeError),
        (plait.WorkerLostError, RuntimeError),
        (plait.WorkflowFileError, ValueError),
    ],
)
def test_errors_subclass_the_builtin_their_docstring_names(
    error: type[Exception], builtin: type[Exception]
) -> None:
    assert issubclass(error, builtin)


def _documented_builtins() -> dict[str, str]:
    """Error name -> builtin, as the ``Name (Builtin)`` entries of the _exceptions docstring say."""
    doc = plait._exceptions.__doc__ or ""
    return dict(re.findall(r"\b(\w+Error) \((\w+)\)", doc))


def test_the_exceptions_docstring_documents_the_builtins_of_the_error_families() -> None:
    documented = _documented_builtins()
    assert {
        "WorkflowError": "ValueError",
        "ConfigError": "ValueError",
        "TaskTimeoutError": "TimeoutError",
        "TaskCancelledError": "RuntimeError",
        "RunFailedError": "RuntimeError",
    }.items() <= documented.items()


@pytest.mark.parametrize("name", sorted(_documented_builtins()))
def test_every_error_subclasses_the_builtin_the_docstring_names(name: str) -> None:
    builtin = getattr(builtins, _documented_builtins()[name])
    # The store's errors, drawn in the same tree, live in plait.stores.
    error = getattr(plait._exceptions, name, None) or getattr(plait.stores, name)
    assert issubclass(error, builtin)


@pytest.mark.parametrize("name", plait._exceptions.__all__)
def test_every_error_of_the_exceptions_module_is_a_documented_plait_error(name: str) -> None:
    assert issubclass(getattr(plait._exceptions, name), plait.PlaitError)
    assert re.search(rf"\b{name}\b", plait._exceptions.__doc__ or ""), f"{name} is not documented"


@pytest.mark.parametrize(
    "error",
    [
        plait.DuplicateTaskError,
        plait.UnknownDependencyError,
        plait.CycleError,
        plait.BindingError,
        plait.InvalidOptionError,
        plait.WorkflowFileError,
    ],
)
def test_definition_errors_are_workflow_errors(error: type[Exception]) -> None:
    assert issubclass(error, plait.WorkflowError)
    assert issubclass(error, ValueError)


@pytest.mark.parametrize(
    "error",
    [
        plait.ConfigError,
        plait.TaskTimeoutError,
        plait.TaskCancelledError,
        plait.RunFailedError,
        plait.ShellCommandError,
        plait.WorkerLostError,
    ],
)
def test_runtime_errors_are_not_workflow_errors(error: type[Exception]) -> None:
    assert not issubclass(error, plait.WorkflowError)


def test_task_status_values_are_exactly_the_documented_strings() -> None:
    assert [status.value for status in plait.TaskStatus] == [
        "pending",
        "running",
        "waiting_for_input",
        "succeeded",
        "failed",
        "skipped",
        "cancelled",
    ]


def test_run_status_values_are_exactly_the_documented_strings() -> None:
    assert [status.value for status in plait.RunStatus] == [
        "running",
        "paused",
        "succeeded",
        "failed",
        "cancelled",
    ]


def test_statuses_compare_and_format_as_their_strings() -> None:
    assert plait.TaskStatus.SUCCEEDED == "succeeded"
    assert f"{plait.RunStatus.FAILED}" == "failed"
    assert str(plait.TaskStatus.WAITING_FOR_INPUT) == "waiting_for_input"


def test_the_package_has_private_modules_to_check() -> None:
    names = {m.__name__ for m in _private_modules()}
    assert {"plait._workflow", "plait._graph", "plait._engine"} <= names


@pytest.mark.parametrize("module", _private_modules(), ids=lambda m: m.__name__)
def test_every_private_module_declares_all(module: ModuleType) -> None:
    assert isinstance(getattr(module, "__all__", None), list), f"{module.__name__} has no __all__"


@pytest.mark.parametrize("module", _private_modules(), ids=lambda m: m.__name__)
def test_every_name_in_a_private_all_exists(module: ModuleType) -> None:
    missing = [name for name in getattr(module, "__all__", []) if not hasattr(module, name)]
    assert missing == []


def _public(package: ModuleType) -> list[tuple[str, object]]:
    return [
        (f"{package.__name__}.{name}", getattr(package, name))
        for name in package.__all__
        if isinstance(getattr(package, name), type) or inspect.isfunction(getattr(package, name))
    ]


# A name both plait and a subpackage export (plait.LeaseLostError, also in plait.stores) names
# the subpackage, where its family lives (StoreError): each object is checked once, under the
# last facade that has it.
PUBLISHED = list(
    {
        id(value): (name, value)
        for name, value in [*_public(plait), *_public(plait.stores), *_public(plait.executors)]
    }.values()
)


@pytest.mark.parametrize(("name", "value"), PUBLISHED, ids=[name for name, _ in PUBLISHED])
def test_public_classes_and_functions_name_the_module_they_are_imported_from(
    name: str, value: object
) -> None:
    assert f"{value.__module__}.{value.__qualname__}" == name  # type: ignore[attr-defined]


@pytest.mark.parametrize(("name", "value"), PUBLISHED, ids=[name for name, _ in PUBLISHED])
def test_type_hints_of_public_classes_still_resolve(name: str, value: object) -> None:
    if isinstance(value, type):
        typing.get_type_hints(value)


def test_a_stored_error_type_and_a_pickled_error_read_plait() -> None:
    error = plait.TaskError.from_exception(
        plait.ShellCommandError("x", command="false", returncode=1, stdout="", stderr="")
    )
    assert error.type == "plait.ShellCommandError"
    assert b"plait._" not in pickle.dumps(plait.TaskTimeoutError("slow"))


def test_the_lazy_exports_match_the_imports_type_checkers_see() -> None:
    """``plait/__init__.py`` lists each name twice: in the TYPE_CHECKING imports (for mypy and
    editors) and in ``_EXPORTS`` (what ``__getattr__`` loads); they must agree."""
    import ast  # noqa: PLC0415
    import inspect  # noqa: PLC0415

    tree = ast.parse(inspect.getsource(plait))
    (checking,) = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
    ]
    imported = {
        "." * node.level + (node.module or ""): tuple(alias.name for alias in node.names)
        for node in checking.body
        if isinstance(node, ast.ImportFrom)
    }
    assert imported == plait._EXPORTS
    assert sorted(name for names in imported.values() for name in names) == plait.__all__
